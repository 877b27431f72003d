//! Where an image goes, named as skopeo names it: `docker-archive:PATH`,
//! `oci:DIR`, `oci-archive:PATH`, each with an optional reference after
//! the first colon past the transport.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DestinationError {
    #[error(
        "destination {0:?} names no transport (expected docker://HOST/REPO[:TAG], docker-daemon:NAME:TAG, docker-archive:PATH, oci:DIR[:REF] or oci-archive:PATH[:REF])"
    )]
    NoTransport(String),
    #[error("destination {0:?}: unknown transport {1:?} (expected docker, docker-daemon, docker-archive, oci or oci-archive)")]
    UnknownTransport(String, String),
    #[error("destination {0:?}: the path is empty")]
    EmptyPath(String),
    #[error("destination {dest:?}: {reference:?} is not a valid {what}")]
    BadReference { dest: String, reference: String, what: &'static str },
    /// A name nixpkgs builds with but Docker refuses, at a destination
    /// that Docker's grammar governs.
    #[error("destination {dest:?}: {why}; {transport} needs a reference Docker accepts (name the image otherwise in DEST)")]
    RefusedByDocker { dest: String, why: String, transport: &'static str },
}

/// A parsed destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// What `stream -o` writes; the reference is the RepoTags entry.
    DockerArchive { path: PathBuf, reference: Option<String> },
    /// An OCI image layout; the reference is the index's ref name.
    Oci { dir: PathBuf, reference: Option<String> },
    /// An OCI image layout as one tar.
    OciArchive { path: PathBuf, reference: Option<String> },
    /// A registry, through the OCI distribution API.
    Registry(crate::registry::Target),
    /// A Docker engine (or podman's Docker-compatible service), through its API.
    DockerDaemon { reference: String },
}

impl std::str::FromStr for Destination {
    type Err = DestinationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(rest) = s.strip_prefix("docker://") {
            let target = crate::registry::Target::parse(rest).map_err(|_| match crate::reference::check_repo_tag(rest) {
                Err(why) if !rest.contains('@') && (crate::reference::tag_of(rest).is_some() || rest.ends_with(':')) => {
                    DestinationError::RefusedByDocker { dest: s.into(), why, transport: "docker://" }
                }
                _ => DestinationError::BadReference { dest: s.into(), reference: rest.into(), what: "HOST[:PORT]/REPO[:TAG|@DIGEST] reference" },
            })?;
            return Ok(Destination::Registry(target));
        }
        if let Some(rest) = s.strip_prefix("docker-daemon:") {
            if !crate::reference::is_docker_reference(rest) || rest.contains('@') {
                let why = crate::reference::check_repo_tag(rest).err().unwrap_or_else(|| format!("{rest:?} is not NAME:TAG"));
                return Err(DestinationError::RefusedByDocker { dest: s.into(), why, transport: "docker-daemon:" });
            }
            return Ok(Destination::DockerDaemon { reference: rest.into() });
        }
        let (transport, rest) = s.split_once(':').ok_or_else(|| DestinationError::NoTransport(s.into()))?;
        // As skopeo splits them: the path ends at the first colon.
        let (path, reference) = match rest.split_once(':') {
            Some((p, r)) => (p, Some(r.to_string())),
            None => (rest, None),
        };
        if path.is_empty() {
            return Err(DestinationError::EmptyPath(s.into()));
        }
        let bad = |reference: &str, what| DestinationError::BadReference { dest: s.into(), reference: reference.into(), what };
        let path = PathBuf::from(path);
        match transport {
            "docker-archive" => {
                if let Some(r) = &reference
                    && !crate::reference::is_docker_reference(r)
                {
                    return Err(bad(r, "NAME:TAG image reference"));
                }
                Ok(Destination::DockerArchive { path, reference })
            }
            "oci" | "oci-archive" => {
                if let Some(r) = &reference
                    && !crate::reference::is_oci_ref_name(r)
                {
                    return Err(bad(r, "OCI reference name"));
                }
                Ok(if transport == "oci" { Destination::Oci { dir: path, reference } } else { Destination::OciArchive { path, reference } })
            }
            other => Err(DestinationError::UnknownTransport(s.into(), other.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_skopeo_names() {
        let d: Destination = "oci:out:latest".parse().unwrap();
        assert_eq!(d, Destination::Oci { dir: "out".into(), reference: Some("latest".into()) });
        let d: Destination = "docker-archive:/tmp/x.tar:hello:1.0".parse().unwrap();
        assert_eq!(d, Destination::DockerArchive { path: "/tmp/x.tar".into(), reference: Some("hello:1.0".into()) });
        let d: Destination = "oci-archive:x.tar".parse().unwrap();
        assert_eq!(d, Destination::OciArchive { path: "x.tar".into(), reference: None });
        for bad in ["out", "oci:", "tarball:x", "oci:out:bad ref", "docker-archive:x.tar:UPPER:tag"] {
            assert!(bad.parse::<Destination>().is_err(), "{bad}");
        }
        // names nixpkgs builds with are refused where Docker's grammar rules, saying why
        for (bad, why) in [
            ("docker-daemon:x:1.0.0+build1", "invalid image tag \"1.0.0+build1\""),
            ("docker-daemon:_foo:1", "invalid image name \"_foo\""),
            ("docker://localhost:5000/x:feature/y", "invalid image tag \"feature/y\""),
            ("docker://localhost:5000/x:", "invalid image tag \"\": it is empty"),
        ] {
            let e = bad.parse::<Destination>().unwrap_err().to_string();
            assert!(e.contains(why) && e.contains("needs a reference Docker accepts"), "{bad}: {e}");
        }
    }
}
