#!/usr/bin/env bash
# The crate with Debian 13's own Rust toolchain (rustc/cargo 1.85), in the
# trixie chroot tests/nix/run-trixie.sh makes: builds the binary and runs
# the unit tests (cargo test --lib), from the repository's Cargo.lock.
#   tests/nix/msrv-trixie.sh        (as root, after tests/install-deps.sh)
# Every dependency in Cargo.lock builds with 1.85; the crate itself does
# (rust-version in Cargo.toml; clippy holds the code to it).
# Environment: LI_TRIXIE_ROOT as for run-trixie.sh. The registry is reached
# as on the host (its CA bundle, $SSL_CERT_FILE or Debian's, is copied in).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"
die() { echo "tests/nix/msrv-trixie.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, chroot, mounts)"
root=${LI_TRIXIE_ROOT:-/var/tmp/layered-image-trixie}
[ -e "$root/.li-debootstrap-done" ] || die "no trixie chroot at $root (run tests/nix/run-trixie.sh first)"

mounted=()
cleanup() {
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount "${mounted[$i]}" 2>/dev/null || umount -l "${mounted[$i]}" || true; done
}
trap cleanup EXIT
for m in proc dev dev/pts sys; do mount --bind "/$m" "$root/$m"; mounted+=("$root/$m"); done

chroot "$root" sh -c 'command -v cargo >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends rustc cargo >/dev/null; }' \
  || die "apt-get install rustc cargo in the chroot failed"
cp "${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}" "$root/root/registry-ca.crt"
work=/li-msrv
rm -rf "${root:?}$work"
mkdir -p "$root$work"
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
  [ -e "$f" ] && cp --parents -P -- "$f" "$root$work/"
done
chroot "$root" sh -c "rustc --version && cargo --version"
start=$(date +%s)
chroot "$root" env CARGO_HTTP_CAINFO=/root/registry-ca.crt CARGO_HOME=/root/.cargo \
  sh -c "cd $work && cargo build --release --locked --bin layered-image && cargo test --release --locked --lib"
echo "== built and tested with Debian 13's toolchain in $(($(date +%s) - start)) s" >&2
