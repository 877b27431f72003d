#!/usr/bin/env bash
# Pushing the bulk fixture (1500 MiB of real files from /usr) split into
# 100 layers to a loopback registry, side by side in one run:
#   first push:     copy CONF docker://        vs  stream -o + skopeo copy docker-archive: docker://
#                   copy oci:DIR docker:// (an image already compressed, as buildLayeredImage's OCI output)
#   unchanged push: copy (digests from `digests --compress gzip`, as Nix keeps them),
#                   and copy without digests (its blob cache warm)
#                   vs  stream -o + skopeo copy again (skopeo's blob-info cache warm)
# Each first push goes to a fresh registry, with both tools' caches cleared.
#   benches/push.sh [--bulk-mib N] [--runs N] [--fixture DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
shared=$here/../shared
bulk=1500 runs=1 fixture=/tmp/layered-image-bench-fixture
for t in skopeo docker-registry; do command -v $t >/dev/null || { echo "benches/push.sh: $t is required" >&2; exit 1; }; done
. "$here/benches/lib.sh" "$@"
out=$(mktemp -d /tmp/li-bench-push.XXXXXX)
port=5123
cat >"$out/fresh-registry" <<SH
#!/bin/sh
# A fresh registry on 127.0.0.1:$port, and neither tool's cache.
[ -f "$out/pid" ] && kill "\$(cat "$out/pid")" 2>/dev/null && sleep 0.5
rm -rf "$out/data" "$out/cache" /var/lib/containers/cache/blob-info-cache-v1.boltdb
printf 'version: 0.1\nstorage:\n  filesystem: {rootdirectory: $out/data}\nhttp:\n  addr: 127.0.0.1:$port\n' >"$out/config.yml"
setsid sh -c 'echo \$\$ > "$out/pid"; exec docker-registry serve "$out/config.yml"' >"$out/log" 2>&1 </dev/null &
for _ in \$(seq 1 50); do curl -s "http://127.0.0.1:$port/v2/" >/dev/null && exit 0; sleep 0.1; done
echo "registry did not start" >&2; exit 1
SH
chmod +x "$out/fresh-registry"
trap '[ -f "$out/pid" ] && kill "$(cat "$out/pid")" 2>/dev/null; rm -rf "$out"' EXIT
# The fixture's 2851 store paths in 100 layers.
split_layers "$conf" 100 "$out/conf-100.json"
c100=$out/conf-100.json
dest=docker://127.0.0.1:$port/li/bench:1
export LAYERED_IMAGE_CACHE_DIR=$out/cache
echo "fixture: $(( size / 1048576 )) MiB in 100 layers, $(nproc) cores, $runs runs each (median)" >&2
ours=$(measure "copy docker:// (first push)" "'$bin' copy '$c100' $dest --dest-tls-verify=false 2>/dev/null" "'$out/fresh-registry'")
sko=$(measure "stream -o + skopeo copy (first)" \
  "'$bin' stream '$c100' -o '$out/x.tar' 2>/dev/null && skopeo copy -q --dest-tls-verify=false docker-archive:'$out/x.tar' $dest" \
  "'$out/fresh-registry'; rm -f '$out/x.tar'")
# A first push of an image already compressed (what `buildLayeredImage { format = "oci"; }`
# keeps in the store): copy oci:DIR docker:// passes its blobs through.
"$bin" copy "$c100" oci:"$out/oci":1 2>/dev/null
fromoci=$(measure "copy oci:DIR docker:// (first push)" "'$bin' copy oci:'$out/oci':1 $dest --dest-tls-verify=false 2>/dev/null" "'$out/fresh-registry'")
"$bin" digests "$c100" --compress gzip -o "$out/conf-100-digests.json"
"$bin" copy "$out/conf-100-digests.json" $dest --dest-tls-verify=false 2>/dev/null
again=$(measure "copy docker:// (unchanged)" "'$bin' copy '$out/conf-100-digests.json' $dest --dest-tls-verify=false 2>/dev/null")
# The blob cache as a user's machine has it after one push without digests
# (fresh-registry wiped it, and a push with digests reads no layer to fill it).
"$bin" copy "$c100" $dest --dest-tls-verify=false 2>/dev/null
cached=$(measure "copy docker:// (unchanged, no digests)" "'$bin' copy '$c100' $dest --dest-tls-verify=false 2>/dev/null")
skoagain=$(measure "stream -o + skopeo copy (unchanged)" \
  "'$bin' stream '$c100' -o '$out/x.tar' 2>/dev/null && skopeo copy -q --dest-tls-verify=false docker-archive:'$out/x.tar' $dest" "rm -f '$out/x.tar'")
awk -v f="$fromoci" -v o="$ours" -v s="$sko" -v a="$again" -v c="$cached" -v b="$skoagain" 'BEGIN {
  printf "first push:     %.1fx faster than stream + skopeo\n", s / o
  printf "first push of an OCI layout: %.1fx faster than stream + skopeo\n", s / f
  printf "unchanged push: %.2f s, %.1fx faster than stream + skopeo\n", a, b / a
  printf "unchanged push without digests (blob cache): %.2f s, %.1fx faster than stream + skopeo\n", c, b / c
}'
