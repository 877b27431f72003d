#!/usr/bin/env bash
# The Nix harness (tests/nix/run.sh) on the newest Nix Debian ships (2.26,
# Debian 13 "trixie"), in a debootstrap chroot, leaving the host's Nix 2.8
# and its store alone:
#   tests/nix/run-trixie.sh        (as root, after tests/install-deps.sh)
# The chroot has its own /nix (2.26 may upgrade a store database 2.8 reads).
# The repository's files (as git sees them) and the layered-image binary
# are copied in; the images are loaded into a private dockerd on the host,
# whose socket is bound into the chroot (the host's docker client too).
# Environment: LI_TRIXIE_ROOT (default /var/tmp/layered-image-trixie) is
# kept between runs (debootstrap and apt take a minute or two);
# LI_NIX_BINARY as for run.sh (default: cargo build --release);
# LI_NIX_DOCKER_DIR (default /tmp/li-nix-docker-trixie).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"
die() { echo "tests/nix/run-trixie.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, chroot, mounts)"
for tool in debootstrap chroot unshare pivot_root mount umount git docker dockerd; do
  command -v "$tool" >/dev/null || die "required tool '$tool' is missing (run tests/install-deps.sh)"
done

root=${LI_TRIXIE_ROOT:-/var/tmp/layered-image-trixie}
docker_dir=${LI_NIX_DOCKER_DIR:-/tmp/li-nix-docker-trixie}
packages="nix-bin git jq gzip zstd pigz python3 fakeroot proot busybox-static skopeo docker-registry ca-certificates python3-pip"

if [ -n "${LI_NIX_BINARY:-}" ]; then
  binary=$LI_NIX_BINARY
else
  cargo build --release --quiet --bin layered-image
  binary=$repo/target/release/layered-image
fi
[ -x "$binary" ] || die "no binary at $binary"

mounted=()
docker_started=
cleanup() {
  local i
  # unmount in reverse order (dev/pts before dev)
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount "${mounted[$i]}" 2>/dev/null || umount -l "${mounted[$i]}" || true; done
  if [ -n "$docker_started" ]; then "$repo/tests/support/dockerd.sh" stop "$docker_dir" || true; fi
}
trap cleanup EXIT
bind() { # bind SRC DEST-INSIDE-CHROOT
  if [ -d "$1" ]; then mkdir -p "$root$2"; else mkdir -p "$(dirname "$root$2")"; touch "$root$2"; fi
  mount --bind "$1" "$root$2"
  mounted+=("$root$2")
}

if [ ! -x "$root/usr/bin/apt-get" ] || [ ! -e "$root/.li-debootstrap-done" ]; then
  echo "== debootstrap trixie into $root" >&2
  rm -rf "$root"
  debootstrap --variant=minbase trixie "$root" http://deb.debian.org/debian >"$root.log" 2>&1 \
    || { tail -20 "$root.log" >&2; die "debootstrap failed (log: $root.log)"; }
  touch "$root/.li-debootstrap-done"
fi
for m in proc dev dev/pts sys; do bind "/$m" "/$m"; done
if [ ! -e "$root/.li-packages" ] || [ "$(cat "$root/.li-packages")" != "$packages" ]; then
  echo "== apt-get install $packages (in the chroot)" >&2
  chroot "$root" sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $packages >/dev/null" \
    || die "apt-get in the chroot failed"
  echo "$packages" >"$root/.li-packages"
fi
# The SBOM validators the harness runs (pinned as tests/install-deps.sh pins them).
validators=(spdx-tools==0.8.5 'cyclonedx-python-lib[json-validation]==11.12.0' packageurl-python==0.17.6)
if [ ! -e "$root/.li-validators" ] || [ "$(cat "$root/.li-validators")" != "${validators[*]}" ]; then
  echo "== pip install ${validators[*]} (in the chroot)" >&2
  # The host's CA bundle: where PyPI is reached through a proxy with its own CA, the
  # chroot's fresh bundle lacks it.
  cp "${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}" "$root/tmp/li-host-ca.crt"
  chroot "$root" env SSL_CERT_FILE=/tmp/li-host-ca.crt PIP_CERT=/tmp/li-host-ca.crt PIP_DEFAULT_TIMEOUT=180 python3 -m pip install -q --break-system-packages "${validators[@]}" >/dev/null \
    || die "pip in the chroot failed"
  echo "${validators[*]}" >"$root/.li-validators"
fi
version=$(chroot "$root" nix --version)
echo "== $version in $root" >&2

# the tree as git sees it, made a git repository again (run.sh lists files with git)
work=/li-src
rm -rf "${root:?}$work"
mkdir -p "$root$work"
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
  [ -e "$f" ] && cp --parents -P -- "$f" "$root$work/"
done
mkdir -p "$root$work/target/release"
cp "$binary" "$root$work/target/release/layered-image"
chroot "$root" sh -c "cd $work && git init -q && git add -A" || die "git init in the chroot failed"

# the host's dockerd and docker client
eval "$("$repo/tests/support/dockerd.sh" start "$docker_dir")"
docker_started=1
bind "$docker_dir" "$docker_dir"
bind "$(command -v docker)" /usr/local/bin/docker

# Nix's sandbox needs namespaces that a chrooted process may not create
# (user namespaces): the harness runs in a mount namespace whose root is
# the trixie tree (pivot_root), not in a chroot.
mkdir -p "$root/.oldroot"
unshare --mount --propagation private sh -c '
  set -e
  mount --rbind "$1" "$1"
  cd "$1"
  pivot_root . .oldroot
  shift
  exec /usr/bin/env -i "$@"' sh "$root" \
  PATH=/usr/local/bin:/usr/bin:/bin HOME=/root TERM=dumb \
  DOCKER_HOST="$DOCKER_HOST" LI_NIX_DOCKER_HOST="$DOCKER_HOST" LI_NIX_HOST_STORE="$root/nix/store" \
  LI_NIX_BINARY="$work/target/release/layered-image" \
  bash -c 'umount -l /.oldroot && cd / && exec bash "$0"' "$work/tests/nix/run.sh"
