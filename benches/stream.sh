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
[ -x /usr/bin/time ] || { echo "benches/stream.sh: GNU time is required (apt-get install time)" >&2; exit 1; }
cargo build --release --quiet --manifest-path "$here/Cargo.toml"
bin=$here/target/release/layered-image
if [ ! -f "$fixture/.bulk-$bulk" ]; then
  echo "building the fixture ($bulk MiB of real files) in $fixture ..." >&2
  "$shared/parity/make-fixture" "$fixture" --bulk-mib "$bulk" >/dev/null
  touch "$fixture/.bulk-$bulk"
fi
conf=$fixture/conf-seed.json
python3 -c 'import json,sys; print("\n".join(p for l in json.load(open(sys.argv[1]))["store_layers"] for p in l))' "$conf" >"$fixture/paths.txt"
size=$(du -sb "$fixture/nix/store" | cut -f1)
# Warm the page cache so every contender reads from memory.
find "$fixture/nix/store" -type f -exec cat {} + >/dev/null

measure() { # name command
  local best="" rss=""
  for _ in $(seq "$runs"); do
    /usr/bin/time -o /tmp/li-bench-time -f "%e %M" sh -c "$2" 2>/dev/null || { echo "benches/stream.sh: '$1' failed" >&2; exit 1; }
    read -r t m < /tmp/li-bench-time
    if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then best=$t; fi
    if [ -z "$rss" ] || [ "$m" -gt "$rss" ]; then rss=$m; fi
  done
  printf '%-22s %8.2f s   peak RSS %6d KiB\n' "$1" "$best" "$rss" >&2
  echo "$best"
}

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
