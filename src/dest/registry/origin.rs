//! Where a request goes, as far as trust is concerned: an origin (scheme,
//! host, port), and URLs resolved the way RFC 3986 §5 says a relative
//! reference (a registry's `Location`) is resolved.
//!
//! Credentials are bound to an origin, never to a bare host: an
//! `http://` URL on the registry's host and port is another origin than
//! the `https://` registry, and gets nothing.
//!
//! A few dozen lines here instead of the `url` crate, whose IDNA tables
//! would outweigh the rest of the registry client; registry URLs are
//! ASCII and the resolver is checked against RFC 3986's own examples.

use std::fmt;

/// `scheme://host:port`, with the port spelled out (443 and 80 by default)
/// and the host in lower case, so equal origins compare equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    pub scheme: String,
    pub host: String,
    pub port: u16,
}

impl Origin {
    /// The origin of an absolute `http(s)://` URL; `None` for anything else.
    pub fn of(url: &str) -> Option<Origin> {
        let parts = Parts::split(url);
        let scheme = parts.scheme?.to_ascii_lowercase();
        let default = match scheme.as_str() {
            "https" => 443,
            "http" => 80,
            _ => return None,
        };
        let authority = parts.authority?;
        // Userinfo in a URL a server handed us is never used.
        let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let (host, port) = match hostport.rsplit_once(':') {
            // `[::1]` without a port: the colon is inside the brackets.
            Some((h, p)) if !p.contains(']') => (h, if p.is_empty() { default } else { p.parse().ok()? }),
            _ => (hostport, default),
        };
        if host.is_empty() {
            return None;
        }
        Some(Origin { scheme, host: host.to_ascii_lowercase(), port })
    }

    pub fn is_https(&self) -> bool {
        self.scheme == "https"
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// The five components of RFC 3986 §3 (fragment dropped: it never
/// reaches a server).
#[derive(Debug, Default, Clone, Copy)]
struct Parts<'a> {
    scheme: Option<&'a str>,
    authority: Option<&'a str>,
    path: &'a str,
    query: Option<&'a str>,
}

impl<'a> Parts<'a> {
    /// Appendix B's split, by hand.
    fn split(s: &'a str) -> Parts<'a> {
        let s = s.split_once('#').map_or(s, |(a, _)| a);
        let (s, query) = match s.split_once('?') {
            Some((a, q)) => (a, Some(q)),
            None => (s, None),
        };
        let mut scheme = None;
        let mut rest = s;
        if let Some((sc, r)) = s.split_once(':') {
            let valid =
                sc.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) && sc.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
            if valid {
                scheme = Some(sc);
                rest = r;
            }
        }
        let (authority, path) = match rest.strip_prefix("//") {
            Some(r) => match r.find('/') {
                Some(i) => (Some(&r[..i]), &r[i..]),
                None => (Some(r), ""),
            },
            None => (None, rest),
        };
        Parts { scheme, authority, path, query }
    }
}

/// §5.2.4: `.` and `..` segments removed.
fn remove_dot_segments(path: &str) -> String {
    let mut input = path;
    let mut out = String::new();
    while !input.is_empty() {
        if let Some(r) = input.strip_prefix("../").or_else(|| input.strip_prefix("./")) {
            input = r;
        } else if input.starts_with("/./") {
            input = &input[2..];
        } else if input == "/." {
            input = "/";
        } else if input.starts_with("/../") || input == "/.." {
            input = if input == "/.." { "/" } else { &input[3..] };
            let cut = out.rfind('/').unwrap_or(0);
            out.truncate(cut);
        } else if input == "." || input == ".." {
            input = "";
        } else {
            let start = usize::from(input.starts_with('/'));
            let end = input[start..].find('/').map_or(input.len(), |i| i + start);
            out.push_str(&input[..end]);
            input = &input[end..];
        }
    }
    out
}

/// §5.2.2: `reference` (a `Location` header) resolved against `base` (the
/// URL of the request it answered), its query kept.
pub fn resolve(base: &str, reference: &str) -> String {
    let b = Parts::split(base);
    let r = Parts::split(reference);
    let (scheme, authority, path, query);
    if r.scheme.is_some() {
        scheme = r.scheme;
        authority = r.authority;
        path = remove_dot_segments(r.path);
        query = r.query;
    } else {
        scheme = b.scheme;
        if r.authority.is_some() {
            authority = r.authority;
            path = remove_dot_segments(r.path);
            query = r.query;
        } else {
            authority = b.authority;
            if r.path.is_empty() {
                path = b.path.to_string();
                query = r.query.or(b.query);
            } else {
                path = if r.path.starts_with('/') {
                    remove_dot_segments(r.path)
                } else {
                    // §5.2.3: merge with the base path's directory.
                    let merged = if b.authority.is_some() && b.path.is_empty() {
                        format!("/{}", r.path)
                    } else {
                        let dir = b.path.rfind('/').map_or("", |i| &b.path[..=i]);
                        format!("{dir}{}", r.path)
                    };
                    remove_dot_segments(&merged)
                };
                query = r.query;
            }
        }
    }
    let mut out = String::new();
    if let Some(s) = scheme {
        out.push_str(s);
        out.push(':');
    }
    if let Some(a) = authority {
        out.push_str("//");
        out.push_str(a);
    }
    out.push_str(&path);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// `url` with `key=value` added to its query (`?` or `&` as needed).
pub fn with_query(url: &str, pair: &str) -> String {
    let sep = match url.split_once('?') {
        Some((_, q)) if q.is_empty() || q.ends_with('&') => "",
        Some(_) => "&",
        None => "?",
    };
    format!("{url}{sep}{pair}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 3986 §5.4.1 and §5.4.2, verbatim (fragments aside: they are
    /// dropped, as a client never sends them).
    #[test]
    fn rfc3986_examples() {
        let base = "http://a/b/c/d;p?q";
        let cases = [
            ("g:h", "g:h"),
            ("g", "http://a/b/c/g"),
            ("./g", "http://a/b/c/g"),
            ("g/", "http://a/b/c/g/"),
            ("/g", "http://a/g"),
            ("//g", "http://g"),
            ("?y", "http://a/b/c/d;p?y"),
            ("g?y", "http://a/b/c/g?y"),
            (";x", "http://a/b/c/;x"),
            ("g;x", "http://a/b/c/g;x"),
            ("", "http://a/b/c/d;p?q"),
            (".", "http://a/b/c/"),
            ("./", "http://a/b/c/"),
            ("..", "http://a/b/"),
            ("../", "http://a/b/"),
            ("../g", "http://a/b/g"),
            ("../..", "http://a/"),
            ("../../", "http://a/"),
            ("../../g", "http://a/g"),
            ("../../../g", "http://a/g"),
            ("../../../../g", "http://a/g"),
            ("/./g", "http://a/g"),
            ("/../g", "http://a/g"),
            ("g.", "http://a/b/c/g."),
            (".g", "http://a/b/c/.g"),
            ("g..", "http://a/b/c/g.."),
            ("..g", "http://a/b/c/..g"),
            ("./../g", "http://a/b/g"),
            ("./g/.", "http://a/b/c/g/"),
            ("g/./h", "http://a/b/c/g/h"),
            ("g/../h", "http://a/b/c/h"),
            ("g;x=1/./y", "http://a/b/c/g;x=1/y"),
            ("g;x=1/../y", "http://a/b/c/y"),
            ("g?y/./x", "http://a/b/c/g?y/./x"),
            ("g?y/../x", "http://a/b/c/g?y/../x"),
            ("http:g", "http:g"),
        ];
        for (r, want) in cases {
            assert_eq!(resolve(base, r), want, "{r:?}");
        }
    }

    #[test]
    fn registry_locations() {
        let post = "https://r.example:5000/v2/a/b/blobs/uploads/";
        assert_eq!(resolve(post, "0c2a?_state=xy%3D"), "https://r.example:5000/v2/a/b/blobs/uploads/0c2a?_state=xy%3D");
        assert_eq!(resolve(post, "/v2/a/b/blobs/uploads/0c2a?_state=1"), "https://r.example:5000/v2/a/b/blobs/uploads/0c2a?_state=1");
        assert_eq!(resolve(post, "https://s3.example/up?sig=1"), "https://s3.example/up?sig=1");
        assert_eq!(with_query("https://h/u?_state=1", "digest=sha256:0"), "https://h/u?_state=1&digest=sha256:0");
        assert_eq!(with_query("https://h/u", "digest=sha256:0"), "https://h/u?digest=sha256:0");
    }

    #[test]
    fn origins() {
        let o = |s: &str| Origin::of(s).map(|o| o.to_string());
        assert_eq!(o("https://Reg.Example/v2/"), Some("https://reg.example:443".into()));
        assert_eq!(o("http://127.0.0.1:5000/v2/x?y"), Some("http://127.0.0.1:5000".into()));
        assert_eq!(o("https://user:pw@h:8443"), Some("https://h:8443".into()));
        assert_eq!(o("https://[::1]/v2/"), Some("https://[::1]:443".into()));
        assert_eq!(o("https://[::1]:5000/v2/"), Some("https://[::1]:5000".into()));
        assert_eq!(o("ftp://h/"), None);
        assert_eq!(o("/v2/"), None);
        assert_ne!(Origin::of("http://h:443/"), Origin::of("https://h/"), "scheme is part of the origin");
        assert_eq!(Origin::of("https://h:443/a"), Origin::of("https://h/b"));
    }
}
