#!/usr/bin/env bash
# Streams the parity fixture with 1500 MiB of real files (from /usr) side by
# side with nixpkgs' stream script and with plain tar, in one run:
#   - one layer (conf-seed: the bulk in one 2.2 GiB layer) and ~100 layers,
#     each piped into `cat >/dev/null`, against `tar -cf - PATHS | cat`;
#   - `-o FILE` and `> FILE` (one pass each, no fsync) against
#     `tar -cf FILE PATHS`;
#   - nixpkgs' script on the 100 layers too, for the many-layer speed-up;
#   - with digests precomputed (`digests`, Nix's precomputeLayerDigests).
# Prints medians, ratios and peak memory.
#   benches/stream.sh [--bulk-mib N] [--runs N] [--fixture DIR]
# Needs ../shared beside the repository, python3, GNU time (/usr/bin/time).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
shared=$here/../shared
bulk=1500 runs=3 fixture=/tmp/layered-image-bench-fixture
. "$here/benches/lib.sh" "$@"
out=$(mktemp -d /tmp/li-bench-stream.XXXXXX)
trap 'rm -rf "$out"' EXIT
split_layers "$conf" 100 "$out/conf-100.json"
c100=$out/conf-100.json
paths=$fixture/paths.txt

echo "fixture: $(( size / 1048576 )) MiB in $(find "$fixture/nix/store" | wc -l) entries, $(nproc) cores, median of $runs runs" >&2
ref=$(measure "reference (python), 1 layer" "'$shared/parity/reference-stream' '$conf' | cat >/dev/null")
one=$(measure "stream | cat, 1 layer" "'$bin' stream '$conf' 2>/dev/null | cat >/dev/null")
many=$(measure "stream | cat, 100 layers" "'$bin' stream '$c100' 2>/dev/null | cat >/dev/null")
ref100=$(measure "reference (python), 100 layers" "'$shared/parity/reference-stream' '$c100' 2>/dev/null | cat >/dev/null")
tarp=$(measure "tar -cf - | cat" "tar -cf - -T '$paths' 2>/dev/null | cat >/dev/null")
file=$(measure "stream -o FILE, 1 layer" "'$bin' stream '$conf' -o '$out/o.tar' 2>/dev/null" "rm -f '$out/o.tar'")
redir=$(measure "stream > FILE, 1 layer" "'$bin' stream '$conf' >'$out/o.tar' 2>/dev/null" "rm -f '$out/o.tar'")
tarf=$(measure "tar -cf FILE" "tar -cf '$out/t.tar' -T '$paths' 2>/dev/null" "rm -f '$out/t.tar'")
"$bin" digests "$conf" -o "$fixture/conf-seed-digests.json"
pre=$(measure "stream | cat, 1 layer, digests" "'$bin' stream '$fixture/conf-seed-digests.json' 2>/dev/null | cat >/dev/null")
# The same bytes every way, and the reference's.
"$shared/parity/compare" "$conf" -- "$bin" stream | head -1 >&2
"$bin" stream "$conf" -o "$out/o.tar" 2>/dev/null
[ "$("$bin" stream "$conf" 2>/dev/null | sha256sum)" = "$(sha256sum <"$out/o.tar")" ] || { echo "benches/stream.sh: -o differs from the pipe" >&2; exit 1; }
awk -v r="$ref" -v r100="$ref100" -v o="$one" -v m="$many" -v t="$tarp" -v f="$file" -v d="$redir" -v tf="$tarf" -v p="$pre" 'BEGIN {
  printf "speed-up over the reference (pipe): %.1fx with 1 layer, %.1fx with 100 layers\n", r / o, r100 / m
  printf "100 layers, pipe:  %.2fx a plain tar pass\n", m / t
  printf "1 layer, pipe:     %.2fx a plain tar pass (digests precomputed: %.2fx)\n", o / t, p / t
  printf "-o FILE:           %.2fx tar -cf FILE (> FILE: %.2fx)\n", f / tf, d / tf
}'
