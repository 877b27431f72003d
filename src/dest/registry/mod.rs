//! A registry as a blob store: the OCI distribution API over HTTP(S).
//!
//! Blobs the repository has are not produced at all (HEAD first); a blob
//! another repository of the registry has is mounted; a missing blob is
//! streamed to the registry while it is produced (one PATCH whose body is
//! the compressor's output, in bounded chunks: no temporary file, flat
//! memory) and committed with the digest that was hashed on the way. The
//! manifest is put last, so a tag never names an image whose blobs did not
//! all arrive, and only once the registry's word on each blob is checked.
//!
//! Trust is per origin (`origin`): credentials go to the registry's own
//! origin and the realm it names, redirects are followed by hand. Every
//! socket read and write is bounded, and a cancel flag shuts the sockets
//! down (`cancel`). docs/registry.md has the rules and the cases tested.
//!
//! The client is ureq, blocking, one connection pool shared by the layer
//! threads: the registry crates at hand (oci-client) want a blob whole in
//! memory, or its digest before its first byte.

pub mod auth;
mod cancel;
pub mod dry_run;
mod errors;
pub mod manifest;
pub mod origin;
mod push;
pub use push::Push;
pub mod referrers;
mod upload;

use crate::blob::{BlobStore, BlobWriter, StoreError};
use crate::digest::{BlobDigest, Digest as BlobName};
use auth::{Challenge, Credentials};
use origin::Origin;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use push::{Platforms, Pushed};

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
    /// Set (by a signal) to stop: requests under way are interrupted
    /// within a fraction of a second, and nothing more is sent.
    pub cancel: Option<Arc<AtomicBool>>,
    /// How long one read or write on a silent connection is waited for
    /// (default [`IDLE_TIMEOUT`]); a registry silent for twice that is
    /// given up.
    pub idle_timeout: Option<Duration>,
}

/// A peer that neither sends nor takes a byte for this long has failed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// `$LAYERED_IMAGE_IO_TIMEOUT` (seconds), the idle bound for registries
/// and engines that are slow on purpose (or for tests); unset: the default.
pub fn idle_timeout_from_env() -> Result<Option<Duration>, RegistryError> {
    match std::env::var("LAYERED_IMAGE_IO_TIMEOUT") {
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(s) if s > 0 => Ok(Some(Duration::from_secs(s))),
            _ => {
                Err(RegistryError::Setup { dest: "$LAYERED_IMAGE_IO_TIMEOUT".into(), what: format!("{v:?} is not a number of seconds (1 or more)") })
            }
        },
        Err(_) => Ok(None),
    }
}
const MAX_REDIRECTS: usize = 8;

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
    /// `https`, or `http` when a registry without TLS answered the first
    /// contact (only with TLS verification off). Decided once, by
    /// [`Registry::ping`]: a connection dropped later never changes it.
    scheme: Mutex<&'static str>,
    tls_verify: bool,
    creds: Option<Credentials>,
    /// The Authorization header the registry's origin accepted last; it
    /// is sent to that origin only.
    auth: Mutex<Option<String>>,
    mount_from: Vec<String>,
    retries: u32,
    outcomes: Mutex<HashMap<String, BlobOutcome>>,
    /// Blob sizes the registry claimed (HEAD) or that were sent, by hex
    /// digest: a manifest naming another size is not tagged.
    sizes: Mutex<HashMap<String, u64>>,
    cancel: Arc<AtomicBool>,
    /// When the registry last answered anything; silent for `dead_after`,
    /// it is given up instead of tried again.
    last_answer: Mutex<Instant>,
    dead_after: Duration,
    /// Set once a streamed upload failed: blobs then go in PATCHes of at
    /// most `chunk` bytes each, with Content-Range.
    chunked: AtomicBool,
    chunk: AtomicUsize,
    _watch: cancel::Watch,
}

/// Why a request failed, and whether trying again may help.
#[derive(Debug)]
struct Failure {
    what: String,
    transient: bool,
    /// The peer was not reached (or did not answer): no HTTP status.
    unreached: bool,
}

type Response = ureq::http::Response<ureq::Body>;

#[derive(Clone, Copy)]
enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
}

/// A response, and the URL that gave it (after redirects): relative
/// Locations resolve against it.
struct Answer {
    resp: Response,
    url: String,
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
        let idle = opts.idle_timeout.unwrap_or(IDLE_TIMEOUT);
        let tls =
            ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::new_with_certs(&roots)).disable_verification(!opts.tls_verify).build();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .tls_config(tls)
            .timeout_connect(Some(idle.min(Duration::from_secs(10))))
            // Every read and write on every socket is bounded: a registry
            // that stops answering, or stops reading a body, fails the
            // request instead of holding the push.
            .timeout_per_read(Some(idle))
            .timeout_per_write(Some(idle))
            .timeout_resolve(Some(idle))
            // A server trickling its answer a byte at a time is bounded too
            // (generously: a registry may verify a large blob before it
            // answers the commit).
            .timeout_recv_response(Some(idle * 10))
            .timeout_recv_body(Some(idle * 10))
            // Redirects are followed by hand (`exchange`): credentials go
            // only to the origin they belong to.
            .max_redirects(0)
            .max_redirects_will_error(false)
            .user_agent(concat!("layered-image/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let creds = auth::lookup(&target.host, opts.creds.as_deref(), opts.authfile.as_deref())?;
        let cancel = opts.cancel.clone().unwrap_or_default();
        let watch = cancel::Watch::start(Arc::clone(&cancel), agent.clone());
        Ok(Registry {
            target,
            agent,
            scheme: Mutex::new("https"),
            tls_verify: opts.tls_verify,
            creds,
            auth: Mutex::new(None),
            mount_from: opts.mount_from.clone(),
            retries: opts.retries.max(1),
            outcomes: Mutex::new(HashMap::new()),
            sizes: Mutex::new(HashMap::new()),
            cancel,
            last_answer: Mutex::new(Instant::now()),
            dead_after: idle * 2,
            chunked: AtomicBool::new(false),
            chunk: AtomicUsize::new(upload::FIRST_CHUNK),
            _watch: watch,
        })
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// What became of each blob (by hex digest).
    pub fn outcomes(&self) -> HashMap<String, BlobOutcome> {
        lock(&self.outcomes).clone()
    }

    fn record(&self, sha256: &str, o: BlobOutcome) {
        lock(&self.outcomes).entry(sha256.to_string()).or_insert(o);
    }

    fn record_size(&self, sha256: &str, size: u64) {
        lock(&self.sizes).insert(sha256.to_string(), size);
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// The registry's origin: the only one its credentials go to.
    fn origin(&self) -> Origin {
        let scheme = *lock(&self.scheme);
        Origin::of(&format!("{scheme}://{}/", self.target.host)).expect("a parsed target's host makes a URL")
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            return path.to_string();
        }
        let scheme = *lock(&self.scheme);
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
        Failure { what: format!("{}: {what}", self.target), transient, unreached: false }
    }

    fn interrupted(&self) -> Failure {
        self.fail("interrupted", false)
    }

    /// Whether the registry answered anything lately; one silent for
    /// longer is not tried again.
    fn alive(&self) -> bool {
        lock(&self.last_answer).elapsed() < self.dead_after
    }

    fn answered(&self) {
        *lock(&self.last_answer) = Instant::now();
    }

    /// The Authorization header for `url`: only to the registry's own
    /// origin (scheme, host and port), never to blob storage or another
    /// origin a Location or a redirect names.
    fn auth_for(&self, url: &str) -> Option<String> {
        if Origin::of(url) != Some(self.origin()) {
            return None;
        }
        lock(&self.auth).clone()
    }

    /// Forgets the credentials the registry refused (a token expired or
    /// was revoked mid-push): the next request meets a 401 and fetches
    /// fresh ones.
    fn forget_auth(&self, refused: Option<&str>) {
        let mut a = lock(&self.auth);
        if a.as_deref() == refused {
            *a = None;
        }
    }

    /// One request; redirects are followed here, by hand, so that `auth`
    /// (an origin and its Authorization header) is sent to that origin
    /// only. 307/308 repeat the method and body; 301/302/303 are followed
    /// by GET and HEAD only.
    fn exchange(&self, method: &str, url: &str, headers: &[(&str, &str)], body: Body, auth: Option<&(Origin, String)>) -> Result<Answer, Failure> {
        let mut url = url.to_string();
        for _ in 0..=MAX_REDIRECTS {
            if self.cancelled() {
                return Err(self.interrupted());
            }
            let here = Origin::of(&url).ok_or_else(|| self.fail(format!("{:?} is not an http(s) URL", redact(&url)), false))?;
            let mut req = ureq::http::Request::builder().method(method).uri(&url);
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            if let Some((origin, value)) = auth {
                if *origin == here {
                    req = req.header("Authorization", value.as_str());
                }
            }
            let result = match body {
                Body::Empty => req.body(()).map_err(|e| self.fail(e, false)).and_then(|r| self.agent.run(r).map_err(|e| self.transport(&here, e))),
                Body::Bytes(b) => req.body(b).map_err(|e| self.fail(e, false)).and_then(|r| self.agent.run(r).map_err(|e| self.transport(&here, e))),
            };
            let resp = result?;
            self.answered();
            let status = resp.status().as_u16();
            let follow = matches!(status, 307 | 308) || (matches!(status, 301..=303) && (method == "GET" || method == "HEAD"));
            if follow {
                if let Some(next) = location_of(&resp) {
                    url = origin::resolve(&url, &next);
                    continue;
                }
            }
            return Ok(Answer { resp, url });
        }
        Err(self.fail(format!("{method} {}: more than {MAX_REDIRECTS} redirects", redact(&url)), false))
    }

    /// One request with the registry's credentials; a 401 from the
    /// registry's own origin is answered once by the challenge it
    /// carries (every step re-authenticates this way: a token that
    /// expired mid-push is replaced). A 401 from another origin gets
    /// nothing.
    fn send_once(&self, method: &str, url: &str, headers: &[(&str, &str)], body: Body) -> Result<Answer, Failure> {
        let mut retried_auth = false;
        loop {
            let auth = lock(&self.auth).clone().map(|a| (self.origin(), a));
            let mut ans = self.exchange(method, url, headers, body, auth.as_ref())?;
            if ans.resp.status().as_u16() != 401 {
                return Ok(ans);
            }
            let at = Origin::of(&ans.url);
            if at.as_ref() != Some(&self.origin()) {
                let at = at.map_or_else(|| redact(&ans.url), |o| o.to_string());
                return Err(self.fail(
                    format!(
                        "{at} (reached through the registry's redirect or Location) asks for credentials; they are sent only to the registry, {}",
                        self.origin()
                    ),
                    false,
                ));
            }
            if retried_auth {
                return Ok(ans);
            }
            retried_auth = true;
            let header = ans.resp.headers().get("www-authenticate").and_then(|h| h.to_str().ok()).unwrap_or("").to_string();
            // The refused answer's body is not needed; the connection is.
            let _ = ans.resp.body_mut().with_config().limit(64 << 10).read_to_vec();
            self.forget_auth(auth.as_ref().map(|(_, a)| a.as_str()));
            self.authenticate(&header)?;
        }
    }

    fn transport(&self, origin: &Origin, e: ureq::Error) -> Failure {
        if self.cancelled() {
            return Failure { unreached: true, ..self.interrupted() };
        }
        let may_pass = matches!(
            e,
            ureq::Error::Io(_)
                | ureq::Error::Timeout(_)
                | ureq::Error::ConnectionFailed
                | ureq::Error::HostNotFound
                | ureq::Error::Protocol(_)
                | ureq::Error::Tls(_)
        );
        let alive = self.alive();
        let gave_up =
            if may_pass && !alive { format!(" (no answer for {} s; giving up)", lock(&self.last_answer).elapsed().as_secs()) } else { String::new() };
        let idle = self.dead_after.as_secs() / 2;
        let why = match e {
            ureq::Error::Timeout(ureq::Timeout::PerRead | ureq::Timeout::RecvResponse | ureq::Timeout::RecvBody) => {
                format!("timed out: no answer for {idle} s")
            }
            ureq::Error::Timeout(ureq::Timeout::PerWrite | ureq::Timeout::SendBody | ureq::Timeout::SendRequest) => {
                format!("timed out: it stopped reading what was sent for {idle} s")
            }
            e => e.to_string(),
        };
        let whom =
            if *origin == self.origin() { format!("the registry at {origin}") } else { format!("{origin} (where the registry sent the request)") };
        Failure { unreached: true, ..self.fail(format!("cannot reach {whom}: {why}{gave_up}"), may_pass && alive) }
    }

    fn authenticate(&self, header: &str) -> Result<(), Failure> {
        let value = match auth::parse_challenge(header) {
            Some(Challenge::Basic) => match &self.creds {
                Some(c) => c.basic_header(),
                None => return Err(self.fail("authentication required, and no credentials were found (--dest-creds, --dest-authfile)", false)),
            },
            Some(Challenge::Bearer { realm, service, .. }) => {
                let Some(realm_origin) = Origin::of(&realm) else {
                    return Err(self.fail(format!("the registry names a token service at {realm:?}, which is not an http(s) URL"), false));
                };
                if self.origin().is_https() && !realm_origin.is_https() && self.creds.is_some() {
                    return Err(self.fail(
                        format!(
                            "the registry {} names its token service at {realm_origin}, over plain HTTP; the credentials are not sent there",
                            self.origin()
                        ),
                        false,
                    ));
                }
                self.token(&realm, realm_origin, service.as_deref())?
            }
            None => return Err(self.fail(format!("401 Unauthorized with an unknown challenge {header:?}"), false)),
        };
        *lock(&self.auth) = Some(value);
        Ok(())
    }

    /// A bearer token from the realm the registry named, for our scopes
    /// (with the user's credentials, to the realm's origin only; anonymously
    /// without them).
    fn token(&self, realm: &str, realm_origin: Origin, service: Option<&str>) -> Result<String, Failure> {
        let mut params: Vec<String> = Vec::new();
        if let Some(s) = service {
            params.push(format!("service={}", urlencode(s)));
        }
        params.extend(self.scopes().iter().map(|s| format!("scope={}", urlencode(s))));
        let url = origin::with_query(realm, &params.join("&"));
        let auth = self.creds.as_ref().map(|c| (realm_origin, c.basic_header()));
        let named = |f: Failure| Failure {
            what: f.what.replacen(&format!("{}: ", self.target), &format!("{}: the token service {realm}: ", self.target), 1),
            ..f
        };
        let mut ans = self.exchange("GET", &url, &[], Body::Empty, auth.as_ref()).map_err(named)?;
        let status = ans.resp.status().as_u16();
        let text = ans.resp.body_mut().with_config().limit(1 << 20).read_to_string().map_err(|e| named(self.fail(e, true)))?;
        if status != 200 {
            let hint = if status == 401 { " (wrong user name or password?)" } else { "" };
            return Err(
                self.fail(format!("the token service {realm} answered {}{hint}", errors::describe(status, &text)), (500..600).contains(&status))
            );
        }
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| self.fail(format!("the token service {realm} sent no JSON: {e}"), false))?;
        let token = v.get("token").or_else(|| v.get("access_token")).and_then(|t| t.as_str()).filter(|t| !t.is_empty());
        token.map(|t| format!("Bearer {t}")).ok_or_else(|| self.fail(format!("the token service {realm} sent no token"), false))
    }

    /// [`Registry::send_once`], tried again with backoff while the
    /// failure may pass (connection errors, 429, 5xx) and the registry
    /// has not been silent too long.
    fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Body) -> Result<Answer, Failure> {
        let url = self.url(path);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self.send_once(method, &url, headers, body);
            let wait = match &result {
                Ok(a) if a.resp.status().as_u16() == 429 || a.resp.status().is_server_error() => retry_after(&a.resp),
                Err(f) if f.transient => Duration::ZERO,
                _ => return result,
            };
            if attempt >= self.retries || !self.alive() || self.cancelled() {
                return match result {
                    Ok(a) => Err(self.status_failure(method, a)),
                    Err(f) => Err(f),
                };
            }
            if !cancel::pause(&self.cancel, backoff(attempt).max(wait)) {
                return Err(self.interrupted());
            }
        }
    }

    /// One clear message for an HTTP answer that is not the expected one:
    /// the request (without its query, which may hold upload state), the
    /// status and the registry's own error code and message.
    fn status_failure(&self, method: &str, mut a: Answer) -> Failure {
        let status = a.resp.status().as_u16();
        let body = a.resp.body_mut().with_config().limit(64 << 10).read_to_string().unwrap_or_default();
        let hint = match status {
            401 => " (check the credentials)",
            403 => " (the credentials lack push rights to this repository?)",
            413 => " (the registry, or a proxy before it, refuses a request this large)",
            _ => "",
        };
        let at = match Origin::of(&a.url) {
            Some(o) if o == self.origin() => String::new(),
            Some(o) => format!(" at {o}"),
            None => String::new(),
        };
        let path = a.url.split('?').next().unwrap_or("").splitn(4, '/').nth(3).unwrap_or("");
        self.fail(format!("{method} /{path}{at}: {}{hint}", errors::describe(status, &body)), status == 429 || (500..600).contains(&status))
    }

    fn store_error(&self, f: Failure) -> StoreError {
        StoreError::Remote { what: f.what, transient: f.transient }
    }

    fn blob_path(&self, sha256: &str) -> String {
        format!("/v2/{}/blobs/sha256:{sha256}", self.target.repo)
    }

    /// Starts an upload session; returns its location, resolved.
    fn start_upload(&self) -> Result<String, Failure> {
        let path = format!("/v2/{}/blobs/uploads/", self.target.repo);
        let a = self.send("POST", &path, &[("Content-Length", "0")], Body::Empty)?;
        if a.resp.status().as_u16() != 202 {
            return Err(self.status_failure("POST", a));
        }
        match location_of(&a.resp) {
            Some(l) => Ok(origin::resolve(&a.url, &l)),
            None => Err(self.fail("the registry started an upload without a Location", false)),
        }
    }

    /// Ends an upload session naming the digest; the registry checks it,
    /// and its answer is checked in turn.
    fn finish_upload(&self, location: &str, sha256: &str, size: u64, body: &[u8]) -> Result<(), Failure> {
        let url = origin::with_query(location, &format!("digest=sha256:{sha256}"));
        let len = body.len().to_string();
        let sent = self.send("PUT", &url, &[("Content-Type", "application/octet-stream"), ("Content-Length", &len)], Body::Bytes(body));
        let a = match sent {
            Ok(a) if a.resp.status().is_success() => a,
            // A commit whose answer was lost (and whose retry then finds
            // no session), or a blob another push stored meanwhile: what
            // counts is whether the repository has the blob, whole.
            failed => {
                if !self.cancelled() && self.blob_is_there(sha256, size) {
                    return Ok(());
                }
                return Err(match failed {
                    Ok(a) => self.status_failure("PUT", a),
                    Err(f) => f,
                });
            }
        };
        let want = format!("sha256:{sha256}");
        if let Some(got) = header(&a.resp, "docker-content-digest") {
            if got != want {
                return Err(self.fail(
                    format!("the registry answered the upload of {want} with Docker-Content-Digest {got}: it did not store what was sent"),
                    false,
                ));
            }
        }
        Ok(())
    }

    /// Whether a HEAD finds the blob with its digest and size.
    fn blob_is_there(&self, sha256: &str, size: u64) -> bool {
        let Ok(a) = self.send_once("HEAD", &self.url(&self.blob_path(sha256)), &[], Body::Empty) else { return false };
        a.resp.status().as_u16() == 200
            && header(&a.resp, "docker-content-digest").is_none_or(|d| d == format!("sha256:{sha256}"))
            && header(&a.resp, "content-length").and_then(|l| l.parse::<u64>().ok()) == Some(size)
    }

    fn try_mount(&self, sha256: &str) -> Result<bool, Failure> {
        for from in &self.mount_from {
            let path = format!("/v2/{}/blobs/uploads/?mount=sha256:{sha256}&from={}", self.target.repo, urlencode(from));
            let a = self.send("POST", &path, &[("Content-Length", "0")], Body::Empty)?;
            match a.resp.status().as_u16() {
                201 => {
                    self.record(sha256, BlobOutcome::Mounted(from.clone()));
                    return Ok(true);
                }
                // Not mountable: an upload session was opened instead; drop it.
                202 => {
                    if let Some(l) = location_of(&a.resp) {
                        let _ = self.send_once("DELETE", &origin::resolve(&a.url, &l), &[], Body::Empty);
                    }
                }
                _ => {}
            }
        }
        Ok(false)
    }

    /// Checks the registry answers at all (and with our credentials),
    /// before anything is produced. This first contact decides, once,
    /// whether the registry speaks HTTPS or (TLS verification off, as
    /// skopeo) plain HTTP.
    pub fn ping(&self) -> Result<(), StoreError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.ping_once() {
                Ok(()) => return Ok(()),
                Err(f) if f.transient && attempt < self.retries && self.alive() => {
                    if !cancel::pause(&self.cancel, backoff(attempt)) {
                        return Err(self.store_error(self.interrupted()));
                    }
                }
                Err(f) => return Err(self.store_error(f)),
            }
        }
    }

    fn ping_once(&self) -> Result<(), Failure> {
        let at = |scheme: &'static str| {
            *lock(&self.scheme) = scheme;
            self.send_once("GET", &format!("{scheme}://{}/v2/", self.target.host), &[], Body::Empty)
        };
        let a = match at("https") {
            Err(f) if f.unreached && !self.tls_verify && !self.cancelled() => match at("http") {
                Ok(a) => a,
                // Plain HTTP reached a server: its answer is the one.
                Err(g) if !g.unreached => return Err(g),
                Err(g) => {
                    *lock(&self.scheme) = "https";
                    let plain = g.what.rsplit_once(": cannot reach ").map_or(g.what.as_str(), |(_, w)| w);
                    return Err(Failure { what: format!("{}; nor over plain HTTP: {plain}", f.what), ..g });
                }
            },
            r => r?,
        };
        match a.resp.status().as_u16() {
            200 => Ok(()),
            _ => Err(self.status_failure("GET", a)),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
    r.headers().get(name).and_then(|h| h.to_str().ok())
}

fn location_of(r: &Response) -> Option<String> {
    header(r, "location").map(str::to_string)
}

/// A URL for a message: without its query (upload state, signatures).
fn redact(url: &str) -> String {
    url.split('?').next().unwrap_or("").to_string()
}

fn retry_after(r: &Response) -> Duration {
    let secs = header(r, "retry-after").and_then(|s| s.trim().parse::<u64>().ok());
    Duration::from_secs(secs.unwrap_or(0).min(30))
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
        if lock(&self.outcomes).contains_key(sha256) {
            return Ok(true);
        }
        let path = self.blob_path(sha256);
        let a = self.send("HEAD", &path, &[], Body::Empty).map_err(|f| self.store_error(f))?;
        match a.resp.status().as_u16() {
            200 => {
                if let Some(got) = header(&a.resp, "docker-content-digest") {
                    if got != format!("sha256:{sha256}") {
                        return Err(
                            self.store_error(self.fail(format!("HEAD of blob sha256:{sha256} answered with Docker-Content-Digest {got}"), false))
                        );
                    }
                }
                if let Some(size) = header(&a.resp, "content-length").and_then(|l| l.parse::<u64>().ok()) {
                    self.record_size(sha256, size);
                }
                self.record(sha256, BlobOutcome::AlreadyThere);
                Ok(true)
            }
            404 => self.try_mount(sha256).map_err(|f| self.store_error(f)),
            _ => Err(self.store_error(self.status_failure("HEAD", a))),
        }
    }

    fn new_blob(&self) -> Result<Box<dyn BlobWriter + '_>, StoreError> {
        let location = self.start_upload().map_err(|f| self.store_error(f))?;
        Ok(Box::new(upload::Upload::start(self, location)))
    }

    /// Small blobs go in one request.
    fn put_blob(&self, bytes: &[u8]) -> Result<BlobDigest, StoreError> {
        let digest = BlobDigest { digest: BlobName::of(bytes), size: bytes.len() as u64 };
        if !self.has_blob(&digest)? {
            let sha256 = digest.digest.hex();
            let location = self.start_upload().map_err(|f| self.store_error(f))?;
            self.finish_upload(&location, &sha256, digest.size, bytes).map_err(|f| self.store_error(f))?;
            self.record_size(&sha256, digest.size);
            self.record(&sha256, BlobOutcome::Uploaded);
        }
        Ok(digest)
    }

    fn describe(&self) -> String {
        self.target.to_string()
    }

    fn presence(&self, blob: &BlobName) -> String {
        match lock(&self.outcomes).get(&blob.hex()) {
            Some(BlobOutcome::Mounted(from)) => format!("mounted from {from}"),
            _ => "already in the repository".into(),
        }
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
