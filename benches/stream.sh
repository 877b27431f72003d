#!/usr/bin/env bash
# Streams the parity fixture with 1500 MiB of real files (from /usr) side by
# side with nixpkgs' stream script and with a plain `tar -cf - PATHS`, each
# piped into `cat >/dev/null`, and prints times, ratios and peak memory.
#   benches/stream.sh [--bulk-mib N] [--runs N] [--fixture DIR]
# Needs ../shared beside the repository, python3, GNU time (/usr/bin/time).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
shared=$here/../shared
bulk=1500 runs=3 fixture=/tmp/layered-image-bench-fixture
while [ $# -gt 0 ]; do
  case "$1" in
    --bulk-mib) bulk=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --fixture) fixture=$2; shift 2 ;;
    *) echo "usage: $0 [--bulk-mib N] [--runs N] [--fixture DIR]" >&2; exit 2 ;;
  esac
done
. "$here/benches/lib.sh"

echo "fixture: $(( size / 1048576 )) MiB in $(find "$fixture/nix/store" | wc -l) entries, $runs runs each (best)" >&2
ref=$(measure "reference (python)" "'$shared/parity/reference-stream' '$conf' | cat >/dev/null")
ours=$(measure "layered-image" "'$bin' stream '$conf' | cat >/dev/null")
# Digests computed beforehand (the Nix side's precomputeLayerDigests): one pass.
"$bin" digests "$conf" -o "$fixture/conf-seed-digests.json"
pre=$(measure "layered-image, digests" "'$bin' stream '$fixture/conf-seed-digests.json' | cat >/dev/null")
tarp=$(measure "tar -cf - | cat" "tar -cf - -T '$fixture/paths.txt' 2>/dev/null | cat >/dev/null")
# Identical output, checked on the same fixture.
"$shared/parity/compare" "$conf" -- "$bin" stream | head -1 >&2
awk -v r="$ref" -v o="$ours" -v p="$pre" -v t="$tarp" 'BEGIN {
  printf "speed-up over the reference: %.1fx (with precomputed digests: %.1fx)\n", r / o, r / p
  printf "time relative to plain tar:  %.2fx (with precomputed digests: %.2fx)\n", o / t, p / t
}'
