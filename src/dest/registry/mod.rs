//! A registry as a blob store: the OCI distribution API over HTTP(S).
//!
//! Blobs the repository has are not produced at all (HEAD first); a blob
//! another repository of the registry has is mounted; a missing blob is
//! streamed to the registry while it is produced (one PATCH whose body is
//! the compressor's output, in bounded chunks: no temporary file, flat
//! memory) and committed with the digest that was hashed on the way. The
//! manifest is put last, so a tag never names an image whose blobs did not
//! all arrive.
//!
//! The client is ureq, blocking, one connection pool shared by the layer
//! threads: the registry crates at hand (oci-client) want a blob whole in
//! memory, or its digest before its first byte.

pub mod auth;
mod push;

pub use push::Push;

use crate::blob::{BlobStore, BlobWriter, StoreError};
use crate::digest::{BlobDigest, Digest};
use auth::{Challenge, Credentials};
use sha2::Digest as _;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

/// `docker://HOST[:PORT]/REPO[:TAG|@DIGEST]`, as skopeo spells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `host[:port]` as written (Docker Hub's is `registry-1.docker.io`).
    pub host: String,
    pub repo: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl Target {
    /// The part after `docker://`.
    pub fn parse(s: &str) -> Result<Target, String> {
        if !crate::reference::is_docker_reference(s) {
            return Err(format!("{s:?} is not a valid image reference (HOST[:PORT]/REPO[:TAG|@DIGEST])"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(d.to_string())),
            None => (s, None),
        };
        let (name, tag) = match rest.rsplit_once(':') {
            Some((n, t)) if !t.contains('/') => (n, Some(t.to_string())),
            _ => (rest, None),
        };
        let (first, remote) = name.split_once('/').unwrap_or(("", name));
        // As docker: a first component with a dot or a port, or
        // "localhost", is a registry host; anything else is Docker Hub.
        let (host, repo) = if !first.is_empty() && (first.contains('.') || first.contains(':') || first == "localhost") {
            (first.to_string(), remote.to_string())
        } else {
            let repo = if name.contains('/') { name.to_string() } else { format!("library/{name}") };
            ("registry-1.docker.io".to_string(), repo)
        };
        let tag = if tag.is_none() && digest.is_none() { Some("latest".to_string()) } else { tag };
        Ok(Target { host, repo, tag, digest })
    }

    /// The tag or digest the manifest is put under.
    pub fn reference(&self) -> &str {
        self.tag.as_deref().or(self.digest.as_deref()).unwrap_or("latest")
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "docker://{}/{}", self.host, self.repo)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// How to reach the registry, as skopeo's `--dest-*` flags say.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `USER:PASSWORD`.
    pub creds: Option<String>,
    pub authfile: Option<PathBuf>,
    /// Extra CA certificates (`*.crt`), trusted beside the system's.
    pub cert_dir: Option<PathBuf>,
    /// Off: certificates are not checked, and plain HTTP is tried when
    /// the registry does not speak TLS (a loopback test registry).
    pub tls_verify: bool,
    /// Repositories of the same registry to mount blobs from.
    pub mount_from: Vec<String>,
    /// Attempts for a request or a blob that fails for a reason that may pass.
    pub retries: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{0}")]
    Auth(#[from] auth::AuthError),
    #[error("{dest}: {what}")]
    Setup { dest: String, what: String },
}

/// What became of a blob, for the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobOutcome {
    Uploaded,
    AlreadyThere,
    Mounted(String),
}

pub struct Registry {
    target: Target,
    agent: ureq::Agent,
    /// `https`, or `http` once a registry without TLS was found (only
    /// with TLS verification off).
    scheme: Mutex<&'static str>,
    tls_verify: bool,
    creds: Option<Credentials>,
    /// The Authorization header that last worked, per scope.
    tokens: Mutex<HashMap<String, String>>,
    mount_from: Vec<String>,
    retries: u32,
    outcomes: Mutex<HashMap<String, BlobOutcome>>,
}

/// Why a request failed, and whether trying again may help.
#[derive(Debug)]
struct Failure {
    what: String,
    transient: bool,
}

type Response = ureq::http::Response<ureq::Body>;

enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
}

impl Registry {
    pub fn new(target: Target, opts: &Options) -> Result<Registry, RegistryError> {
        let dest = target.to_string();
        let setup = |what: String| RegistryError::Setup { dest: dest.clone(), what };
        let mut roots: Vec<ureq::tls::Certificate<'static>> = Vec::new();
        let native = rustls_native_certs::load_native_certs();
        roots.extend(native.certs.into_iter().map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned()));
        if let Some(dir) = &opts.cert_dir {
            let entries = std::fs::read_dir(dir).map_err(|e| setup(format!("--dest-cert-dir {}: {e}", dir.display())))?;
            for e in entries.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "crt") {
                    let pem = crate::input::read_limited(&p, 1 << 20).map_err(|e| setup(format!("{}: {e}", p.display())))?;
                    for item in ureq::tls::parse_pem(&pem) {
                        if let Ok(ureq::tls::PemItem::Certificate(c)) = item {
                            roots.push(c);
                        }
                    }
                }
            }
        }
        let tls =
            ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::new_with_certs(&roots)).disable_verification(!opts.tls_verify).build();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .tls_config(tls)
            .timeout_connect(Some(Duration::from_secs(30)))
            // A registry that stops answering fails the request (and it is
            // tried again) instead of hanging the push.
            .timeout_recv_response(Some(Duration::from_secs(300)))
            .timeout_recv_body(Some(Duration::from_secs(300)))
            .max_redirects(8)
            .user_agent(concat!("layered-image/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let creds = auth::lookup(&target.host, opts.creds.as_deref(), opts.authfile.as_deref())?;
        Ok(Registry {
            target,
            agent,
            scheme: Mutex::new("https"),
            tls_verify: opts.tls_verify,
            creds,
            tokens: Mutex::new(HashMap::new()),
            mount_from: opts.mount_from.clone(),
            retries: opts.retries.max(1),
            outcomes: Mutex::new(HashMap::new()),
        })
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// What became of each blob (by hex digest).
    pub fn outcomes(&self) -> HashMap<String, BlobOutcome> {
        self.outcomes.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn record(&self, sha256: &str, o: BlobOutcome) {
        self.outcomes.lock().unwrap_or_else(|p| p.into_inner()).entry(sha256.to_string()).or_insert(o);
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            return path.to_string();
        }
        let scheme = *self.scheme.lock().unwrap_or_else(|p| p.into_inner());
        format!("{scheme}://{}{path}", self.target.host)
    }

    /// The scope a request needs: push to our repository, pull from the
    /// ones blobs are mounted from.
    fn scopes(&self) -> Vec<String> {
        let mut s = vec![format!("repository:{}:pull,push", self.target.repo)];
        s.extend(self.mount_from.iter().map(|r| format!("repository:{r}:pull")));
        s
    }

    fn fail(&self, what: impl std::fmt::Display, transient: bool) -> Failure {
        Failure { what: format!("{}: {what}", self.target), transient }
    }

    /// One request, with the auth that worked before; a 401 is answered
    /// once by the challenge it carries.
    fn send_once(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &Body) -> Result<Response, Failure> {
        let mut retried_auth = false;
        loop {
            let url = self.url(path);
            let mut req = ureq::http::Request::builder().method(method).uri(&url);
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            if let Some(a) = self.auth_for(&url) {
                req = req.header("Authorization", a);
            }
            let result = match body {
                Body::Empty => req.body(()).map_err(|e| self.fail(e, false)).and_then(|r| self.agent.run(r).map_err(|e| self.transport(e))),
                Body::Bytes(b) => req.body(*b).map_err(|e| self.fail(e, false)).and_then(|r| self.agent.run(r).map_err(|e| self.transport(e))),
            };
            let resp = match result {
                Err(f) if f.transient && !self.tls_verify && self.switch_to_http() => continue,
                r => r?,
            };
            if resp.status().as_u16() == 401 && !retried_auth {
                retried_auth = true;
                let header = resp.headers().get("www-authenticate").and_then(|h| h.to_str().ok()).unwrap_or("").to_string();
                self.authenticate(&header)?;
                continue;
            }
            return Ok(resp);
        }
    }

    /// The Authorization header for `url`: only to the registry itself,
    /// never to another host a Location points at (blob storage).
    fn auth_for(&self, url: &str) -> Option<String> {
        let host = url.split_once("://").map(|(_, rest)| rest.split(['/', '?']).next().unwrap_or("")).unwrap_or("");
        if host != self.target.host {
            return None;
        }
        self.tokens.lock().unwrap_or_else(|p| p.into_inner()).get("auth").cloned()
    }

    /// A registry without TLS (loopback test registries), when TLS
    /// verification is off: as skopeo, fall back to plain HTTP once.
    fn switch_to_http(&self) -> bool {
        let mut s = self.scheme.lock().unwrap_or_else(|p| p.into_inner());
        if *s == "https" {
            *s = "http";
            true
        } else {
            false
        }
    }

    fn transport(&self, e: ureq::Error) -> Failure {
        let transient = matches!(
            e,
            ureq::Error::Io(_) | ureq::Error::Timeout(_) | ureq::Error::ConnectionFailed | ureq::Error::HostNotFound | ureq::Error::Protocol(_)
        ) || matches!(e, ureq::Error::Tls(_));
        self.fail(format!("cannot reach the registry: {e}"), transient)
    }

    fn authenticate(&self, header: &str) -> Result<(), Failure> {
        let value = match auth::parse_challenge(header) {
            Some(Challenge::Basic) => match &self.creds {
                Some(c) => c.basic_header(),
                None => return Err(self.fail("authentication required, and no credentials were found (--dest-creds, --dest-authfile)", false)),
            },
            Some(Challenge::Bearer { realm, service, .. }) => self.token(&realm, service.as_deref())?,
            None => return Err(self.fail(format!("401 Unauthorized with an unknown challenge {header:?}"), false)),
        };
        self.tokens.lock().unwrap_or_else(|p| p.into_inner()).insert("auth".into(), value);
        Ok(())
    }

    /// A bearer token from the realm, for our scopes (with the user's
    /// credentials if there are any; anonymously otherwise).
    fn token(&self, realm: &str, service: Option<&str>) -> Result<String, Failure> {
        let mut url = format!("{realm}{}", if realm.contains('?') { '&' } else { '?' });
        let mut params: Vec<String> = Vec::new();
        if let Some(s) = service {
            params.push(format!("service={}", urlencode(s)));
        }
        params.extend(self.scopes().iter().map(|s| format!("scope={}", urlencode(s))));
        url.push_str(&params.join("&"));
        let mut req = self.agent.get(&url);
        if let Some(c) = &self.creds {
            req = req.header("Authorization", &c.basic_header());
        }
        let mut resp = req.call().map_err(|e| self.transport(e))?;
        let status = resp.status().as_u16();
        if status != 200 {
            let hint = if status == 401 { " (wrong user name or password?)" } else { "" };
            return Err(self.fail(format!("the token service {realm} answered HTTP {status}{hint}"), (500..600).contains(&status)));
        }
        let text = resp.body_mut().with_config().limit(1 << 20).read_to_string().map_err(|e| self.fail(e, true))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| self.fail(format!("the token service {realm} sent no JSON: {e}"), false))?;
        let token = v.get("token").or_else(|| v.get("access_token")).and_then(|t| t.as_str());
        token.map(|t| format!("Bearer {t}")).ok_or_else(|| self.fail(format!("the token service {realm} sent no token"), false))
    }

    /// [`Registry::send_once`], tried again with backoff while the
    /// failure may pass (connection errors, 429, 5xx).
    fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Body) -> Result<Response, Failure> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self.send_once(method, path, headers, &body);
            let wait = match &result {
                Ok(r) if r.status().as_u16() == 429 || r.status().is_server_error() => retry_after(r),
                Err(f) if f.transient => Some(Duration::ZERO),
                _ => return result,
            };
            if attempt >= self.retries {
                return match result {
                    Ok(r) => Err(self.status_failure(method, path, r)),
                    Err(f) => Err(f),
                };
            }
            std::thread::sleep(backoff(attempt).max(wait.unwrap_or_default()));
        }
    }

    /// One clear message for an HTTP answer that is not the expected one.
    fn status_failure(&self, method: &str, path: &str, mut r: Response) -> Failure {
        let status = r.status();
        let body = r.body_mut().with_config().limit(64 << 10).read_to_string().unwrap_or_default();
        let detail = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.pointer("/errors/0/message").and_then(|m| m.as_str()).map(str::to_string))
            .unwrap_or_else(|| body.chars().take(200).collect());
        let what = path.split('?').next().unwrap_or(path).rsplit("/v2/").next().unwrap_or(path);
        let hint = match status.as_u16() {
            401 => " (check the credentials)",
            403 => " (the credentials lack push rights to this repository?)",
            _ => "",
        };
        self.fail(
            format!("{method} /v2/{what}: HTTP {}{}{hint}", status.as_u16(), if detail.is_empty() { String::new() } else { format!(": {detail}") }),
            status.as_u16() == 429 || status.is_server_error(),
        )
    }

    fn store_error(&self, f: Failure) -> StoreError {
        StoreError::Remote { what: f.what, transient: f.transient }
    }

    fn blob_path(&self, sha256: &str) -> String {
        format!("/v2/{}/blobs/sha256:{sha256}", self.target.repo)
    }

    /// Starts an upload session; returns its location.
    fn start_upload(&self) -> Result<String, Failure> {
        let path = format!("/v2/{}/blobs/uploads/", self.target.repo);
        let r = self.send("POST", &path, &[("Content-Length", "0")], Body::Empty)?;
        if r.status().as_u16() != 202 {
            return Err(self.status_failure("POST", &path, r));
        }
        location_of(&r).ok_or_else(|| self.fail("the registry started an upload without a Location", false))
    }

    /// Ends an upload session naming the digest; the registry checks it.
    fn finish_upload(&self, location: &str, sha256: &str, body: &[u8]) -> Result<(), Failure> {
        let sep = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{sep}digest=sha256:{sha256}");
        let len = body.len().to_string();
        let r = self.send("PUT", &url, &[("Content-Type", "application/octet-stream"), ("Content-Length", &len)], Body::Bytes(body))?;
        if r.status().as_u16() != 201 {
            return Err(self.status_failure("PUT", &url, r));
        }
        Ok(())
    }

    fn try_mount(&self, sha256: &str) -> Result<bool, Failure> {
        for from in &self.mount_from {
            let path = format!("/v2/{}/blobs/uploads/?mount=sha256:{sha256}&from={}", self.target.repo, urlencode(from));
            let r = self.send("POST", &path, &[("Content-Length", "0")], Body::Empty)?;
            match r.status().as_u16() {
                201 => {
                    self.record(sha256, BlobOutcome::Mounted(from.clone()));
                    return Ok(true);
                }
                // Not mountable: an upload session was opened instead; drop it.
                202 => {
                    if let Some(l) = location_of(&r) {
                        let _ = self.send_once("DELETE", &l, &[], &Body::Empty);
                    }
                }
                _ => {}
            }
        }
        Ok(false)
    }

    /// Puts a manifest (or an index) under `reference` (a tag or a digest).
    pub fn put_manifest(&self, bytes: &[u8], media_type: &str, reference: &str) -> Result<(), StoreError> {
        let path = format!("/v2/{}/manifests/{reference}", self.target.repo);
        let len = bytes.len().to_string();
        let r = self
            .send("PUT", &path, &[("Content-Type", media_type), ("Content-Length", &len)], Body::Bytes(bytes))
            .map_err(|f| self.store_error(f))?;
        if r.status().as_u16() != 201 {
            return Err(self.store_error(self.status_failure("PUT", &path, r)));
        }
        let want = format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)));
        if let Some(got) = r.headers().get("docker-content-digest").and_then(|h| h.to_str().ok())
            && got != want
        {
            return Err(self.store_error(self.fail(format!("the registry stored the manifest as {got}, not {want}"), false)));
        }
        Ok(())
    }

    /// Checks the registry answers at all (and with our credentials),
    /// before anything is produced.
    pub fn ping(&self) -> Result<(), StoreError> {
        let r = self.send("GET", "/v2/", &[], Body::Empty).map_err(|f| self.store_error(f))?;
        match r.status().as_u16() {
            200 => Ok(()),
            _ => Err(self.store_error(self.status_failure("GET", "/v2/", r))),
        }
    }
}

fn location_of(r: &Response) -> Option<String> {
    r.headers().get("location").and_then(|h| h.to_str().ok()).map(str::to_string)
}

fn retry_after(r: &Response) -> Option<Duration> {
    let secs = r.headers().get("retry-after").and_then(|h| h.to_str().ok()).and_then(|s| s.trim().parse::<u64>().ok());
    Some(Duration::from_secs(secs.unwrap_or(0).min(30)))
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(250u64 << attempt.min(6))
}

/// A query parameter's value.
fn urlencode(s: &str) -> String {
    crate::reference::percent_encode(s, b"")
}

impl BlobStore for Registry {
    fn has_blob(&self, blob: &BlobDigest) -> Result<bool, StoreError> {
        let sha256 = &blob.digest.hex();
        // Every blob with an outcome is in the repository by now.
        if self.outcomes.lock().unwrap_or_else(|p| p.into_inner()).contains_key(sha256) {
            return Ok(true);
        }
        let path = self.blob_path(sha256);
        let r = self.send("HEAD", &path, &[], Body::Empty).map_err(|f| self.store_error(f))?;
        match r.status().as_u16() {
            200 => {
                self.record(sha256, BlobOutcome::AlreadyThere);
                Ok(true)
            }
            404 => self.try_mount(sha256).map_err(|f| self.store_error(f)),
            _ => Err(self.store_error(self.status_failure("HEAD", &path, r))),
        }
    }

    fn new_blob(&self) -> Result<Box<dyn BlobWriter + '_>, StoreError> {
        let location = self.start_upload().map_err(|f| self.store_error(f))?;
        Ok(Box::new(Upload::start(self, location)))
    }

    /// Small blobs go in one request.
    fn put_blob(&self, bytes: &[u8]) -> Result<BlobDigest, StoreError> {
        let digest = BlobDigest { digest: Digest::of(bytes), size: bytes.len() as u64 };
        if !self.has_blob(&digest)? {
            let sha256 = digest.digest.hex();
            let location = self.start_upload().map_err(|f| self.store_error(f))?;
            self.finish_upload(&location, &sha256, bytes).map_err(|f| self.store_error(f))?;
            self.record(&sha256, BlobOutcome::Uploaded);
        }
        Ok(digest)
    }

    fn describe(&self) -> String {
        self.target.to_string()
    }

    fn presence(&self, blob: &Digest) -> String {
        match self.outcomes.lock().unwrap_or_else(|p| p.into_inner()).get(&blob.hex()) {
            Some(BlobOutcome::Mounted(from)) => format!("mounted from {from}"),
            _ => "already in the repository".into(),
        }
    }
}

/// Chunks travelling from the producer to the request body.
const CHUNK: usize = 1 << 20;
const IN_FLIGHT: usize = 4;

/// A blob streamed to an upload session: a PATCH whose body is read from
/// a bounded channel on its own thread, committed with a PUT naming the
/// digest.
struct Upload<'r> {
    registry: &'r Registry,
    buf: Vec<u8>,
    tx: Option<crossbeam_channel::Sender<Vec<u8>>>,
    patch: Option<std::thread::JoinHandle<Result<String, Failure>>>,
}

impl<'r> Upload<'r> {
    fn start(registry: &'r Registry, location: String) -> Upload<'r> {
        let (tx, rx) = crossbeam_channel::bounded::<Vec<u8>>(IN_FLIGHT);
        let url = registry.url(&location);
        let agent = registry.agent.clone();
        let auth = registry.auth_for(&url);
        let target = registry.target.to_string();
        let patch = std::thread::spawn(move || {
            let mut body = ChannelReader { rx, current: Vec::new(), pos: 0 };
            let mut req = agent.patch(&url).header("Content-Type", "application/octet-stream");
            if let Some(a) = &auth {
                req = req.header("Authorization", a);
            }
            let fail = |what: String, transient| Failure { what: format!("{target}: {what}"), transient };
            let r = req.send(ureq::SendBody::from_reader(&mut body)).map_err(|e| fail(format!("uploading a blob: {e}"), true))?;
            let status = r.status().as_u16();
            if status != 202 && status != 204 {
                return Err(fail(format!("PATCH of a blob upload: HTTP {status}"), status == 429 || status >= 500));
            }
            Ok(location_of(&r).unwrap_or(url))
        });
        Upload { registry, buf: Vec::with_capacity(CHUNK), tx: Some(tx), patch: Some(patch) }
    }

    fn ship(&mut self) -> io::Result<()> {
        let full = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        let tx = self.tx.as_ref().expect("not yet committed");
        if tx.send(full).is_err() {
            // The request ended early: its error says why.
            let why = self
                .patch
                .take()
                .map(|h| h.join())
                .and_then(|r| r.ok())
                .and_then(|r| r.err())
                .map_or("the upload ended early".to_string(), |f| f.what);
            return Err(io::Error::other(why));
        }
        Ok(())
    }
}

impl Write for Upload<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.ship()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl BlobWriter for Upload<'_> {
    fn commit(mut self: Box<Self>, digest: &Digest) -> Result<(), StoreError> {
        let sha256 = &digest.hex();
        let reg = self.registry;
        if !self.buf.is_empty() {
            self.ship().map_err(|e| StoreError::Remote { what: e.to_string(), transient: true })?;
        }
        drop(self.tx.take());
        let next = match self.patch.take().map(|h| h.join()) {
            Some(Ok(r)) => r.map_err(|f| reg.store_error(f))?,
            _ => return Err(StoreError::Remote { what: format!("{}: the upload thread failed", reg.target), transient: true }),
        };
        reg.finish_upload(&next, sha256, &[]).map_err(|f| reg.store_error(f))?;
        reg.record(sha256, BlobOutcome::Uploaded);
        Ok(())
    }
}

impl Drop for Upload<'_> {
    fn drop(&mut self) {
        // Not committed: end the request body, so the thread ends; the
        // registry drops the unfinished session.
        drop(self.tx.take());
        if let Some(h) = self.patch.take() {
            let _ = h.join();
        }
    }
}

struct ChannelReader {
    rx: crossbeam_channel::Receiver<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            match self.rx.recv() {
                Ok(next) => {
                    self.current = next;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.current.len() - self.pos);
        out[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = Target::parse("127.0.0.1:5000/li/app:v1").unwrap();
        assert_eq!((t.host.as_str(), t.repo.as_str(), t.tag.as_deref()), ("127.0.0.1:5000", "li/app", Some("v1")));
        let t = Target::parse("alpine").unwrap();
        assert_eq!((t.host.as_str(), t.repo.as_str(), t.reference()), ("registry-1.docker.io", "library/alpine", "latest"));
        let t = Target::parse("localhost/x@sha256:0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!((t.host.as_str(), t.repo.as_str(), t.tag.as_deref()), ("localhost", "x", None));
        assert!(Target::parse("Bad/Name").is_err());
    }
}
