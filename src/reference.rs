//! Image references, checked against the grammars their readers use, so
//! that a bad name is refused here rather than by `docker load` later.

use regex::Regex;
use std::sync::LazyLock;

/// distribution's reference grammar (`name[:tag][@digest]`, a name of at
/// most 255 characters), as `docker load` and registries apply it.
static DOCKER_REFERENCE: LazyLock<Regex> = LazyLock::new(|| {
    let alnum = "[a-z0-9]+";
    let sep = "(?:[._]|__|[-]+)";
    let component = format!("{alnum}(?:{sep}{alnum})*");
    let domain_component = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
    let host = format!("(?:{domain_component}(?:\\.{domain_component})*|\\[[0-9a-fA-F:]+\\])");
    let domain = format!("{host}(?::[0-9]+)?");
    let name = format!("(?:{domain}/)?{component}(?:/{component})*");
    let tag = r"[\w][\w.-]{0,127}";
    let digest = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}";
    Regex::new(&format!("^(?P<name>{name})(?::{tag})?(?:@{digest})?$")).expect("a valid pattern")
});

/// The OCI image layout's grammar for `org.opencontainers.image.ref.name`.
static OCI_REF_NAME: LazyLock<Regex> = LazyLock::new(|| {
    let component = "[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*";
    Regex::new(&format!("^{component}(?:/{component})*$")).expect("a valid pattern")
});

pub fn is_docker_reference(s: &str) -> bool {
    DOCKER_REFERENCE.captures(s).is_some_and(|c| c["name"].len() <= 255)
}

pub fn is_oci_ref_name(s: &str) -> bool {
    OCI_REF_NAME.is_match(s)
}

/// The tag of `name:tag` (a colon after the last slash), if any.
pub fn tag_of(reference: &str) -> Option<&str> {
    let last = reference.rsplit('/').next().unwrap_or(reference);
    let last = last.split('@').next().unwrap_or(last);
    last.rsplit_once(':').map(|(_, t)| t).filter(|t| !t.is_empty())
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
    fn oci_ref_names() {
        for ok in ["latest", "v1.0", "example.com/app:v1", "a--b"] {
            assert!(is_oci_ref_name(ok), "{ok}");
        }
        for bad in ["", "-x", "a b", "a//b", "x/"] {
            assert!(!is_oci_ref_name(bad), "{bad}");
        }
        assert_eq!(tag_of("localhost:5000/a:1.0"), Some("1.0"));
        assert_eq!(tag_of("localhost:5000/a"), None);
    }
}
