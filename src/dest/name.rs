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

/// A parsed destination name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Name {
    /// What `stream -o` writes; the reference is the RepoTags entry.
    DockerArchive { path: PathBuf, reference: Option<String> },
    /// An OCI image layout; the reference is the index's ref name.
    Oci { dir: PathBuf, reference: Option<String> },
    /// An OCI image layout as one tar.
    OciArchive { path: PathBuf, reference: Option<String> },
    /// A registry, through the OCI distribution API.
    Registry(crate::dest::registry::Target),
    /// A Docker engine (or podman's Docker-compatible service), through its API.
    DockerDaemon { reference: String },
}

impl std::str::FromStr for Name {
    type Err = DestinationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(rest) = s.strip_prefix("docker://") {
            let target = crate::dest::registry::Target::parse(rest).map_err(|_| match crate::reference::check_repo_tag(rest) {
                Err(why) if !rest.contains('@') && (crate::reference::tag_of(rest).is_some() || rest.ends_with(':')) => {
                    DestinationError::RefusedByDocker { dest: s.into(), why, transport: "docker://" }
                }
                _ => DestinationError::BadReference { dest: s.into(), reference: rest.into(), what: "HOST[:PORT]/REPO[:TAG|@DIGEST] reference" },
            })?;
            return Ok(Name::Registry(target));
        }
        if let Some(rest) = s.strip_prefix("docker-daemon:") {
            if !crate::reference::is_docker_reference(rest) || rest.contains('@') {
                let why = crate::reference::check_repo_tag(rest).err().unwrap_or_else(|| format!("{rest:?} is not NAME:TAG"));
                return Err(DestinationError::RefusedByDocker { dest: s.into(), why, transport: "docker-daemon:" });
            }
            return Ok(Name::DockerDaemon { reference: rest.into() });
        }
        let (transport, rest) = s.split_once(':').ok_or_else(|| DestinationError::NoTransport(s.into()))?;
        let (path, reference) = crate::reference::split_path_ref(rest);
        let reference = reference.map(str::to_string);
        if path.is_empty() {
            return Err(DestinationError::EmptyPath(s.into()));
        }
        let bad = |reference: &str, what| DestinationError::BadReference { dest: s.into(), reference: reference.into(), what };
        let path = PathBuf::from(path);
        match transport {
            "docker-archive" => {
                if let Some(r) = &reference {
                    if !crate::reference::is_docker_reference(r) {
                        return Err(bad(r, "NAME:TAG image reference"));
                    }
                }
                Ok(Name::DockerArchive { path, reference })
            }
            "oci" | "oci-archive" => {
                if let Some(r) = &reference {
                    if !crate::reference::is_oci_ref_name(r) {
                        return Err(bad(r, "OCI reference name"));
                    }
                }
                Ok(if transport == "oci" { Name::Oci { dir: path, reference } } else { Name::OciArchive { path, reference } })
            }
            other => Err(DestinationError::UnknownTransport(s.into(), other.into())),
        }
    }
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let with_ref = |f: &mut std::fmt::Formatter<'_>, transport: &str, path: &std::path::Path, r: &Option<String>| {
            write!(f, "{transport}:{}", path.display())?;
            match r {
                Some(r) => write!(f, ":{r}"),
                None => Ok(()),
            }
        };
        match self {
            Name::DockerArchive { path, reference } => with_ref(f, "docker-archive", path, reference),
            Name::Oci { dir, reference } => with_ref(f, "oci", dir, reference),
            Name::OciArchive { path, reference } => with_ref(f, "oci-archive", path, reference),
            Name::Registry(target) => write!(f, "{target}"),
            Name::DockerDaemon { reference } => write!(f, "docker-daemon:{reference}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_skopeo_names() {
        let d: Name = "oci:out:latest".parse().unwrap();
        assert_eq!(d, Name::Oci { dir: "out".into(), reference: Some("latest".into()) });
        let d: Name = "docker-archive:/tmp/x.tar:hello:1.0".parse().unwrap();
        assert_eq!(d, Name::DockerArchive { path: "/tmp/x.tar".into(), reference: Some("hello:1.0".into()) });
        let d: Name = "oci-archive:x.tar".parse().unwrap();
        assert_eq!(d, Name::OciArchive { path: "x.tar".into(), reference: None });
        for bad in ["out", "oci:", "tarball:x", "oci:out:bad ref", "docker-archive:x.tar:UPPER:tag"] {
            assert!(bad.parse::<Name>().is_err(), "{bad}");
        }
        // names nixpkgs builds with are refused where Docker's grammar rules, saying why
        for (bad, why) in [
            ("docker-daemon:x:1.0.0+build1", "invalid image tag \"1.0.0+build1\""),
            ("docker-daemon:_foo:1", "invalid image name \"_foo\""),
            ("docker://localhost:5000/x:feature/y", "invalid image tag \"feature/y\""),
            ("docker://localhost:5000/x:", "invalid image tag \"\": it is empty"),
        ] {
            let e = bad.parse::<Name>().unwrap_err().to_string();
            assert!(e.contains(why) && e.contains("needs a reference Docker accepts"), "{bad}: {e}");
        }
    }
}
