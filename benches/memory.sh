#!/usr/bin/env bash
# Peak memory of `copy` at -j1, -j2 and -j16 (gzip and zstd, the bulk split
# into 97 layers, into an OCI layout), and of `stream` over one directory
# of 300,000 names, side by side in one run.
#   benches/memory.sh [--bulk-mib N] [--runs N] [--fixture DIR]
# Needs ../shared beside the repository and GNU time.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
shared=$here/../shared
bulk=1000 runs=1 fixture=/tmp/layered-image-bench-fixture
. "$here/benches/lib.sh" "$@"
out=$(mktemp -d /tmp/li-bench-mem.XXXXXX)
trap 'rm -rf "$out"' EXIT
split_layers "$conf" 97 "$out/97.json"
echo "fixture: $(( size / 1048576 )) MiB in 97 layers, $(nproc) cores" >&2
for c in gzip zstd; do
  for j in 1 2 16; do
    measure "copy --compress $c -j$j" "'$bin' copy '$out/97.json' oci:'$out/l':t --compress $c -j$j --no-blob-cache 2>/dev/null" "rm -rf '$out/l'" >/dev/null
  done
done
wide=$out/wide
mkdir -p "$wide/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-wide/d"
python3 - "$wide/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-wide/d" <<'PY'
import os, sys
for i in range(300000):
    open(os.path.join(sys.argv[1], f"a-file-name-of-some-sixty-bytes-as-store-trees-have-them-{i:07d}"), "w").close()
PY
cp -r "$here/examples/hello/custom" "$wide/custom"
cat > "$wide/conf.json" <<JSON
{"architecture": "amd64", "config": {}, "os": "linux", "store_dir": "nix/store", "from_image": null,
 "store_layers": [["nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-wide"]], "customisation_layer": "custom",
 "repo_tag": "wide:latest", "created": "1970-01-01T00:00:01+00:00", "uid": 0, "gid": 0, "uname": "root", "gname": "root"}
JSON
measure "stream | cat, 300,000 names in one dir" "'$bin' stream '$wide/conf.json' | cat >/dev/null" >/dev/null
measure "stream -o, 300,000 names in one dir" "'$bin' stream '$wide/conf.json' -o '$out/w.tar'" "rm -f '$out/w.tar'" >/dev/null
measure "tar -cf - | cat, the same dir" "tar -C '$wide' -cf - nix | cat >/dev/null" >/dev/null
