//! Image references, checked against the grammars their readers use, so
//! that a bad name is refused here rather than by `docker load` later.

use regex::Regex;
use std::sync::LazyLock;

/// The pieces of distribution's reference grammar.
const TAG: &str = r"[\w][\w.-]{0,127}";

fn name_pattern() -> String {
    let alnum = "[a-z0-9]+";
    let sep = "(?:[._]|__|[-]+)";
    let component = format!("{alnum}(?:{sep}{alnum})*");
    let domain_component = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
    let host = format!("(?:{domain_component}(?:\\.{domain_component})*|\\[[0-9a-fA-F:]+\\])");
    let domain = format!("{host}(?::[0-9]+)?");
    format!("(?:{domain}/)?{component}(?:/{component})*")
}

/// distribution's reference grammar (`name[:tag][@digest]`, a name of at
/// most 255 characters), as `docker load` and registries apply it.
static DOCKER_REFERENCE: LazyLock<Regex> = LazyLock::new(|| {
    let digest = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}";
    Regex::new(&format!("^(?P<name>{})(?::{TAG})?(?:@{digest})?$", name_pattern())).expect("a valid pattern")
});

static DOCKER_NAME: LazyLock<Regex> = LazyLock::new(|| Regex::new(&format!("^{}$", name_pattern())).expect("a valid pattern"));
static DOCKER_TAG: LazyLock<Regex> = LazyLock::new(|| Regex::new(&format!("^{TAG}$")).expect("a valid pattern"));

/// The OCI image layout's grammar for `org.opencontainers.image.ref.name`.
static OCI_REF_NAME: LazyLock<Regex> = LazyLock::new(|| {
    let component = "[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*";
    Regex::new(&format!("^{component}(?:/{component})*$")).expect("a valid pattern")
});

pub fn is_docker_reference(s: &str) -> bool {
    DOCKER_REFERENCE.captures(s).is_some_and(|c| c["name"].len() <= 255)
}

/// An image name alone (no tag, no digest), e.g. `registry:5000/org/app`.
pub fn is_docker_name(s: &str) -> bool {
    s.len() <= 255 && DOCKER_NAME.is_match(s)
}

/// A tag: word characters, `.` and `-`, not starting with `.` or `-`, at most 128.
pub fn is_docker_tag(s: &str) -> bool {
    DOCKER_TAG.is_match(s)
}

/// A NAME:TAG for `docker load`'s RepoTags, or why not.
pub fn check_repo_tag(s: &str) -> Result<(), String> {
    match split_repo_tag(s) {
        Some((name, tag)) if !name.is_empty() => {
            check_name(name)?;
            check_tag(tag)
        }
        _ => Err(format!("{s:?} is not NAME:TAG (e.g. example.com/app:1.0)")),
    }
}

/// `NAME:TAG` split where nixpkgs joined it: at the first colon that is
/// not a registry port's (the tag may hold `/` and `:` of its own).
fn split_repo_tag(s: &str) -> Option<(&str, &str)> {
    let is_port = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    let from = match s.split_once('/') {
        Some((host, rest)) if host.split_once(':').is_some_and(|(_, port)| is_port(port)) => s.len() - rest.len(),
        _ => 0,
    };
    let colon = from + s[from..].find(':')?;
    Some((&s[..colon], &s[colon + 1..]))
}

/// An image name, or why not (with the rule it breaks).
pub fn check_name(s: &str) -> Result<(), String> {
    if is_docker_name(s) {
        return Ok(());
    }
    let why = if s.is_empty() {
        "it is empty"
    } else if s.len() > 255 {
        "it is longer than 255 characters"
    } else if s.split('/').skip(usize::from(s.contains('/') && looks_like_domain(s))).any(|c| c.chars().any(|ch| ch.is_ascii_uppercase())) {
        "its path has upper-case letters (nixpkgs lowercases `name`)"
    } else {
        "each /-separated component must be lower-case letters and digits, joined by '.', '_', '__' or dashes, optionally after a registry host[:port]/"
    };
    Err(format!("invalid image name {s:?}: {why}"))
}

/// A tag, or why not.
pub fn check_tag(s: &str) -> Result<(), String> {
    if is_docker_tag(s) {
        return Ok(());
    }
    let why = if s.is_empty() {
        "it is empty"
    } else if s.len() > 128 {
        "it is longer than 128 characters"
    } else {
        "a tag is letters, digits, '_', '.' and '-', not starting with '.' or '-'"
    };
    Err(format!("invalid image tag {s:?}: {why}"))
}

fn looks_like_domain(s: &str) -> bool {
    let first = s.split('/').next().unwrap_or("");
    first.contains('.') || first.contains(':') || first == "localhost" || first.chars().any(|c| c.is_ascii_uppercase())
}

/// `PATH[:REF]` after a file transport's `transport:`, split as skopeo
/// splits it: the path ends at the first colon, so a reference may hold
/// colons and a path may not.
pub fn split_path_ref(rest: &str) -> (&str, Option<&str>) {
    match rest.split_once(':') {
        Some((p, r)) => (p, Some(r)),
        None => (rest, None),
    }
}

pub fn is_oci_ref_name(s: &str) -> bool {
    OCI_REF_NAME.is_match(s)
}

/// The tag of `name:tag` as a conf's `repo_tag` holds it, if any. nixpkgs
/// joins any name and any tag with a colon, so the tag may itself hold
/// `/`, `:` or `@` (`feature/x`); the name's only colon is a registry
/// port (`host:5000/...`), so the tag starts at the first other colon.
pub fn tag_of(reference: &str) -> Option<&str> {
    split_repo_tag(reference).map(|(_, t)| t).filter(|t| !t.is_empty())
}

/// The one warning line for a `NAME:TAG` that Docker would refuse, or
/// `None` for a valid one. nixpkgs builds and streams any name and tag;
/// so do `conf` and `stream`, saying what will refuse it later. Only the
/// destinations that need a valid reference (`docker://`,
/// `docker-daemon:`) refuse it.
pub fn refusal_warning(repo_tag: &str) -> Option<String> {
    check_repo_tag(repo_tag).err().map(|why| {
        format!("warning: {why}; docker load, docker-daemon: and docker:// will refuse this name (the image is written with it, as nixpkgs does)")
    })
}

/// `s` for a URL: RFC 3986's unreserved characters and those in `keep`
/// as they are, every other byte percent-encoded.
pub(crate) fn percent_encode(s: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || keep.contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_references() {
        for ok in ["hello", "hello:latest", "localhost:5000/a/b:1.0", "ghcr.io/org/img@sha256:0123456789abcdef0123456789abcdef", "a__b-c.d:TAG_1"] {
            assert!(is_docker_reference(ok), "{ok}");
        }
        for bad in ["", "Hello", "hello:", "hello::x", "a//b", "-a", "hello:tag with space", "a:b:c"] {
            assert!(!is_docker_reference(bad), "{bad}");
        }
        assert!(!is_docker_reference(&"a".repeat(256)));
    }

    #[test]
    fn names_and_tags() {
        for ok in ["hello", "registry-1.docker.io/layered-image", "localhost:5000/a/b", "Example.COM/app"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Hello", "a//b", "hello:tag", "x/"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert!(check_name("Example/UPPER").unwrap_err().contains("upper-case"));
        for ok in ["latest", "v1.0", "A_b-c", "0123456789abcdefghijklmnopqrstuv"] {
            assert!(check_tag(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".x", "-x", "a b", "a/b", "a:b"] {
            assert!(check_tag(bad).is_err(), "{bad}");
        }
        assert!(check_tag(&"a".repeat(129)).is_err());
        assert!(check_repo_tag("other/name:tag").is_ok());
        assert!(check_repo_tag("x:y").is_ok());
        assert!(check_repo_tag("localhost:5000/x:y").is_ok());
        for bad in ["noTag", "localhost:5000/x", "x:", ":y", "UP:y", "x:y z"] {
            assert!(check_repo_tag(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn oci_ref_names() {
        for ok in ["latest", "v1.0", "example.com/app:v1", "a--b"] {
            assert!(is_oci_ref_name(ok), "{ok}");
        }
        for bad in ["", "-x", "a b", "a//b", "x/"] {
            assert!(!is_oci_ref_name(bad), "{bad}");
        }
        assert_eq!(tag_of("localhost:5000/a:1.0"), Some("1.0"));
        assert_eq!(tag_of("localhost:5000/a"), None);
        assert_eq!(tag_of("a:feature/x"), Some("feature/x"));
        assert_eq!(tag_of("localhost:5000/a:feature/x"), Some("feature/x"));
        assert_eq!(tag_of("a:1.0.0+build1"), Some("1.0.0+build1"));
        assert_eq!(tag_of("a:"), None);
        assert_eq!(tag_of("host:port/a:1"), Some("port/a:1"));
    }

    #[test]
    fn warnings_for_what_docker_refuses() {
        for ok in ["a:1", "localhost:5000/a:1"] {
            assert_eq!(refusal_warning(ok), None, "{ok}");
        }
        for (bad, why) in [
            ("a:1.0.0+build1", "invalid image tag"),
            ("a:feature/x", "invalid image tag"),
            ("a:", "it is empty"),
            ("_foo:1", "invalid image name"),
            ("a", "is not NAME:TAG"),
        ] {
            let w = refusal_warning(bad).unwrap();
            assert!(w.starts_with("warning: ") && w.contains(why) && !w.contains('\n'), "{bad}: {w}");
        }
    }
}
