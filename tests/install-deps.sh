#!/usr/bin/env bash
# Installs every tool the test suite uses (Debian 12, as root). Idempotent.
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
  echo "tests/install-deps.sh: must run as root (apt-get)" >&2
  exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  nix-bin skopeo umoci docker.io containerd docker-registry podman runc fakeroot proot \
  busybox-static debootstrap jq pigz zstd xz-utils bzip2 gzip tar python3 ca-certificates time util-linux coreutils \
  apache2-utils openssl buildah python3-pip tmux strace >/dev/null
# The validators tests/sbom.rs runs (pinned): pyspdxtools (SPDX 2.3), cyclonedx-python-lib's
# strict JSON validator (CycloneDX 1.6, with packageurl-python), in-toto-attestation (Statement v1
# and SLSA provenance v1 protos); jsonschema for the OCI image-spec schemas.
python3 -m pip --version >/dev/null 2>&1 ||
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
python3 -m pip install -q --break-system-packages \
  spdx-tools==0.8.5 'cyclonedx-python-lib[json-validation]==11.12.0' packageurl-python==0.17.6 \
  in-toto-attestation==0.9.3 jsonschema==4.26.0 referencing==0.37.0 >/dev/null
# explain --html: the page is loaded in a real headless browser.
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
# The machine's own docker client may be newer than Debian's dockerd; both work.
command -v cargo >/dev/null || { echo "tests/install-deps.sh: cargo (rustup) is required" >&2; exit 1; }
echo "tests/install-deps.sh: tools installed" >&2
