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
  apache2-utils openssl buildah python3-pip >/dev/null
# The official OCI schemas are draft-04 with relative $refs: jsonschema 4.18+
# resolves them offline through a `referencing` registry (Debian 12 ships 4.10).
python3 -c 'import jsonschema, referencing' 2>/dev/null \
  || python3 -m pip install -q 'jsonschema>=4.18' 'referencing>=0.28' 2>/dev/null \
  || python3 -m pip install -q --break-system-packages 'jsonschema>=4.18' 'referencing>=0.28'
# The machine's own docker client may be newer than Debian's dockerd; both work.
command -v cargo >/dev/null || { echo "tests/install-deps.sh: cargo (rustup) is required" >&2; exit 1; }
echo "tests/install-deps.sh: tools installed" >&2
