#!/usr/bin/env bash
# OCI images from the bulk fixture (1500 MiB of real files from /usr), side
# by side in one run: `copy CONF oci:DIR` against what users do without it
# (`stream -o` then `skopeo copy --dest-compress docker-archive: oci:`), and
# against the plain compressors over the same files (`tar | pigz -p N`,
# `tar | zstd -T N`), output to a file or /dev/null as noted.
#   benches/oci.sh [--bulk-mib N] [--runs N] [--fixture DIR]
# Needs ../shared beside the repository, skopeo, pigz, zstd, GNU time.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
shared=$here/../shared
bulk=1500 runs=2 fixture=/tmp/layered-image-bench-fixture
for t in skopeo pigz zstd; do command -v $t >/dev/null || { echo "benches/oci.sh: $t is required" >&2; exit 1; }; done
. "$here/benches/lib.sh" "$@"
cores=$(nproc)
out=$(mktemp -d /tmp/li-bench-oci.XXXXXX)
trap 'rm -rf "$out"' EXIT

echo "fixture: $(( size / 1048576 )) MiB in $(find "$fixture/nix/store" | wc -l) entries, $cores cores, $runs runs each (median)" >&2
# A first copy: nothing in the blob cache either.
export LAYERED_IMAGE_CACHE_DIR=$out/cache
fresh="rm -rf '$out/l' '$out/s' '$out/x.tar' '$out/cache'"
ours=$(measure "copy oci: (gzip 2)" "'$bin' copy '$conf' oci:'$out/l':t 2>/dev/null" "$fresh")
ourz=$(measure "copy oci: (zstd 3)" "'$bin' copy '$conf' oci:'$out/l':t --compress zstd 2>/dev/null" "$fresh")
sko=$(measure "stream -o + skopeo copy (gzip)" \
  "'$bin' stream '$conf' -o '$out/x.tar' 2>/dev/null && skopeo copy -q --dest-compress docker-archive:'$out/x.tar' oci:'$out/s':t" "$fresh")
pigz=$(measure "tar | pigz -p $cores > /dev/null" "tar -cf - -T '$fixture/paths.txt' 2>/dev/null | pigz -p $cores -6 >/dev/null")
zst=$(measure "tar | zstd -T$cores -3 > /dev/null" "tar -cf - -T '$fixture/paths.txt' 2>/dev/null | zstd -q -T$cores -3 >/dev/null")
# The same image both ways: diff_ids and config agree.
"$bin" copy "$conf" oci:"$out/l":t 2>/dev/null
"$bin" stream "$conf" -o "$out/x.tar" 2>/dev/null
skopeo copy -q --dest-compress docker-archive:"$out/x.tar" oci:"$out/s":t
[ "$(skopeo inspect --config oci:"$out/l":t | python3 -c 'import json,sys; print(json.load(sys.stdin)["rootfs"])')" = \
  "$(skopeo inspect --config oci:"$out/s":t | python3 -c 'import json,sys; print(json.load(sys.stdin)["rootfs"])')" ] \
  || { echo "benches/oci.sh: the two routes made different images" >&2; exit 1; }
awk -v o="$ours" -v z="$ourz" -v s="$sko" -v p="$pigz" -v q="$zst" 'BEGIN {
  printf "copy oci: (gzip) vs stream + skopeo copy: %.1fx faster\n", s / o
  printf "copy oci: (gzip) vs tar | pigz:           %.2fx the time\n", o / p
  printf "copy oci: (zstd) vs tar | zstd -T:        %.2fx the time\n", z / q
}'
