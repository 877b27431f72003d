#!/usr/bin/env bash
# The whole test suite: formatting and lints, unit and integration tests
# (reference parity, real skopeo/umoci/docker loads, bad input, layering
# golden vectors, GNU tar parity, GNU date parity), the Nix harness on
# Debian 12's Nix 2.8 and on Debian 13's Nix 2.26 (a debootstrap chroot),
# the crate built and unit-tested with Debian 13's rustc 1.85 there,
# and the issue's 300 MiB parity check.
# Run as root after tests/install-deps.sh; needs ../shared beside the repo.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
shared=$repo/../shared
[ -x "$shared/parity/reference-stream" ] || { echo "tests/run-all.sh: $shared is missing (the shared/ folder must sit beside the repository)" >&2; exit 1; }
docker_dir=/tmp/layered-image-test-docker
# copy's blob cache starts empty for every run (tests that need it set their own).
blob_cache=$(mktemp -d /tmp/layered-image-blob-cache.XXXXXX)
export LAYERED_IMAGE_CACHE_DIR=$blob_cache
trap 'tests/support/dockerd.sh stop "$docker_dir" || true; rm -rf "$blob_cache"' EXIT

echo "== cargo fmt --check" >&2
cargo fmt --check
echo "== cargo clippy --all-targets -- -D warnings" >&2
cargo clippy --release --locked --all-targets -- -D warnings
echo "== cargo build" >&2
cargo build --release --locked
echo "== cargo test" >&2
cargo test --release --locked --no-fail-fast

echo "== nix harness (Debian 12: Nix 2.8)" >&2
LI_NIX_BINARY=$repo/target/release/layered-image tests/nix/run.sh
echo "== nix harness (Debian 13 chroot: Nix 2.26)" >&2
LI_NIX_BINARY=$repo/target/release/layered-image tests/nix/run-trixie.sh
echo "== the crate with Debian 13's rustc 1.85 (rust-version), in the same chroot" >&2
tests/nix/msrv-trixie.sh

echo "== parity with the reference on the 300 MiB bulk fixture" >&2
fixture=$(mktemp -d /tmp/layered-image-parity.XXXXXX)
"$shared/parity/make-fixture" "$fixture/fx" --bulk-mib 300 >/dev/null
passed=0 failed=0
for conf in conf-seed.json conf-newest.json conf-from.json; do
  if out=$("$shared/parity/compare" "$fixture/fx/$conf" -- target/release/layered-image stream) && [[ $out == identical* ]]; then
    passed=$((passed + 1)); echo "PASS $conf: $out"
  else
    failed=$((failed + 1)); echo "FAIL $conf: $out"
  fi
done
rm -rf "$fixture"
echo "parity: $passed passed, $failed failed"
[ "$failed" = 0 ]
