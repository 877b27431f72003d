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
  apache2-utils openssl >/dev/null
# explain --html: the page is loaded in a real headless browser.
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
# The machine's own docker client may be newer than Debian's dockerd; both work.
command -v cargo >/dev/null || { echo "tests/install-deps.sh: cargo (rustup) is required" >&2; exit 1; }
echo "tests/install-deps.sh: tools installed" >&2
