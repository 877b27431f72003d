//! Credentials as users have them, and the registry's auth challenges.
//!
//! Credentials are looked up as skopeo does: `--dest-creds`, then
//! `--dest-authfile`, `$REGISTRY_AUTH_FILE`, containers' `auth.json`
//! (`$XDG_RUNTIME_DIR/containers/`, `~/.config/containers/`), then
//! `~/.docker/config.json` with its credential helpers. A 401 answer's
//! `WWW-Authenticate` says how to use them: Basic, or a Bearer token
//! fetched from the realm it names (Docker Hub, GHCR, Quay, distribution's
//! token auth).

use base64::Engine;
use std::path::{Path, PathBuf};

/// A user name and password (or an identity token as password).
#[derive(Clone)]
pub struct Credentials {
    pub user: String,
    pub password: String,
    /// Where they came from, for messages (never the secret itself).
    pub source: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({} from {})", self.user, self.source)
    }
}

impl Credentials {
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.user, self.password);
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("--dest-creds must be USER:PASSWORD")]
    BadCreds,
    #[error("cannot read credentials from {path}: {what}")]
    AuthFile { path: PathBuf, what: String },
}

fn from_docker(c: docker_credential::DockerCredential, source: String) -> Credentials {
    match c {
        docker_credential::DockerCredential::UsernamePassword(user, password) => Credentials { user, password, source },
        // An identity token goes as the password of the magic user name
        // registries expect for it.
        docker_credential::DockerCredential::IdentityToken(password) => Credentials { user: "<token>".into(), password, source },
    }
}

/// The host names a credential may be stored under.
fn keys(host: &str) -> Vec<String> {
    let mut k = vec![host.to_string(), format!("https://{host}"), format!("http://{host}")];
    if host == "registry-1.docker.io" || host == "docker.io" || host == "index.docker.io" {
        k.push("https://index.docker.io/v1/".into());
        k.push("docker.io".into());
    }
    k
}

fn from_file(path: &Path, host: &str) -> Result<Option<Credentials>, AuthError> {
    let text = match crate::input::read_limited(path, 16 << 20) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(AuthError::AuthFile { path: path.into(), what: e.to_string() }),
    };
    for k in keys(host) {
        if let Ok(c) = docker_credential::get_credential_from_reader(&text[..], &k) {
            return Ok(Some(from_docker(c, path.display().to_string())));
        }
    }
    Ok(None)
}

/// The credentials for `host`, or none (anonymous).
pub fn lookup(host: &str, creds: Option<&str>, authfile: Option<&Path>) -> Result<Option<Credentials>, AuthError> {
    if let Some(c) = creds {
        let (user, password) = c.split_once(':').ok_or(AuthError::BadCreds)?;
        return Ok(Some(Credentials { user: user.into(), password: password.into(), source: "--dest-creds".into() }));
    }
    if let Some(f) = authfile {
        if !f.exists() {
            return Err(AuthError::AuthFile { path: f.into(), what: "no such file".into() });
        }
        return from_file(f, host);
    }
    let mut files: Vec<PathBuf> = Vec::new();
    if let Some(f) = std::env::var_os("REGISTRY_AUTH_FILE") {
        files.push(f.into());
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR") {
        files.push(Path::new(&d).join("containers/auth.json"));
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    if let Some(h) = &home {
        files.push(h.join(".config/containers/auth.json"));
    }
    for f in files {
        if let Some(c) = from_file(&f, host)? {
            return Ok(Some(c));
        }
    }
    // Docker's own config, credential helpers and store included.
    for k in keys(host) {
        if let Ok(c) = docker_credential::get_credential(&k) {
            return Ok(Some(from_docker(c, "~/.docker/config.json".into())));
        }
    }
    Ok(None)
}

/// What a `WWW-Authenticate` header asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer { realm: String, service: Option<String>, scope: Option<String> },
}

/// Parses `Basic realm="x"` or `Bearer realm="...",service="...",scope="..."`.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => {
            let params = parse_params(rest);
            let get = |k: &str| params.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)).map(|(_, v)| v.clone());
            Some(Challenge::Bearer { realm: get("realm")?, service: get("service"), scope: get("scope") })
        }
        _ => None,
    }
}

/// `k="v",k2=v2`, with quoted values that may hold commas.
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let name: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=')).collect();
        if name.is_empty() || chars.next() != Some('=') {
            return out;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ',')).collect::<String>().trim().to_string();
        }
        out.push((name.trim().to_string(), value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(parse_challenge(r#"Basic realm="Registry Realm""#), Some(Challenge::Basic));
        assert_eq!(
            parse_challenge(r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push""#),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:a/b:pull,push".into())
            })
        );
        assert_eq!(parse_challenge("Bearer service=x"), None);
    }
}
