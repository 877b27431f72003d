#!/usr/bin/env bash
# Side-by-side timing of `layered-image popularity` / `auto-layer` against
# nixpkgs' closure-graph.py / auto-layer.py on synthetic closures.
#
# usage: benches/layering.sh [SIZE...]            (default: 5000 20000)
# env:   CLOSURE_GRAPH_PY  path to closure-graph.py (default /work/refscripts/closure-graph.py)
#        AUTO_LAYER_PY     path to auto-layer.py    (default /work/refscripts/auto-layer.py)
#        LAYERED_IMAGE     our binary (default: target/release/layered-image, built if missing)
#        AUTO_LIMITS       auto-layer layer limits to try (default "100 1000")
#        PYTHON            interpreter for the references (default python3)
# Not a test: nothing here asserts on wall-clock time. Ours is timed best
# of 3 runs, the references once.
set -euo pipefail
cd "$(dirname "$0")/.."

sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(5000 20000)
closure_graph=${CLOSURE_GRAPH_PY:-/work/refscripts/closure-graph.py}
auto_layer=${AUTO_LAYER_PY:-/work/refscripts/auto-layer.py}
read -r -a limits <<<"${AUTO_LIMITS:-100 1000}"
python=${PYTHON:-python3}
ours=${LAYERED_IMAGE:-target/release/layered-image}
if [ ! -x "$ours" ]; then
  cargo build --release --quiet
fi
for ref in "$closure_graph" "$auto_layer"; do
  [ -f "$ref" ] || echo "benches/layering.sh: reference script $ref is absent: its column will say 'absent'" >&2
done
have_time=0
if /usr/bin/time -f %M true 2>/dev/null; then have_time=1; else
  echo "benches/layering.sh: /usr/bin/time missing (apt-get install time): no peak RSS" >&2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# measure OUTFILE CMD... -> prints "seconds rss_kib" (millisecond wall clock), output in OUTFILE
measure() {
  local out=$1; shift
  local start end rss=-
  start=$(date +%s%N)
  if [ $have_time = 1 ]; then
    /usr/bin/time -f "%M" -o "$work/time" "$@" >"$out" 2>"$work/err" || { echo "failed: $* ($(tail -1 "$work/err"))" >&2; echo "fail -"; return; }
    rss=$(tail -1 "$work/time")
  else
    "$@" >"$out" 2>"$work/err" || { echo "fail -"; return; }
  fi
  end=$(date +%s%N)
  echo "$(awk -v ns=$((end - start)) 'BEGIN { printf "%.3f", ns / 1e9 }') $rss"
}

# best of 3 for ours (cheap), so a busy machine skews it less
measure3() {
  local best="" line
  for _ in 1 2 3; do
    line=$(measure "$@")
    if [ -z "$best" ] || awk -v a="${line%% *}" -v b="${best%% *}" 'BEGIN { exit !(a < b) }'; then best=$line; fi
  done
  echo "$best"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "fail" || b == "fail" || b + 0 == 0) print "-"; else printf "%.0fx (ours = %.2f%%)", a / b, 100 * b / a }'; }

printf '%-12s %7s %12s %12s %12s %12s %-28s %s\n' tool paths "ref s" "ours s" "ref RSS MiB" "ours RSS MiB" speed-up same-output
for n in "${sizes[@]}"; do
  graph="$work/graph-$n.json"
  "$python" - "$n" "$graph" <<'PY'
import json, random, sys
# A closure shaped like real ones: a few large, widely shared low-level
# paths (libc, …), many mid-level libraries, applications on top; every
# path references a handful of lower paths, biased towards popular ones.
n, out = int(sys.argv[1]), sys.argv[2]
rng = random.Random(n)
alphabet = "0123456789abcdfghijklmnpqrsvwxyz"
names = ["glibc", "zlib", "openssl", "libffi", "ncurses", "python3", "perl", "gcc-lib", "bash", "coreutils", "lib", "app", "tool", "data"]
paths = []
for i in range(n):
    h = "".join(rng.choice(alphabet) for _ in range(32))
    paths.append(f"/nix/store/{h}-{rng.choice(names)}-{i % 97}.{i % 13}")
graph = []
for i, p in enumerate(paths):
    refs = {p}
    lower = n - i - 1
    if lower > 0:
        for _ in range(min(lower, rng.randint(1, 8))):
            # node i depends on later (lower-level) nodes, often the bottom ones
            j = n - 1 - int(lower * rng.random() ** 3)
            refs.add(paths[max(i + 1, j)])
    size = int(rng.lognormvariate(11, 2.5))
    graph.append({"path": p, "references": sorted(refs), "narSize": size, "closureSize": 0, "narHash": "sha256:x"})
rng.shuffle(graph)
json.dump(graph, open(out, "w"))
json.dump({"graph": graph}, open(out + ".attrs", "w"))
PY

  # popularity
  read -r ours_s ours_rss < <(measure3 "$work/ours.pop" "$ours" popularity "$graph")
  if [ -f "$closure_graph" ]; then
    read -r ref_s ref_rss < <(measure "$work/ref.pop" env PYTHONHASHSEED=0 "$python" "$closure_graph" "$graph.attrs" graph)
    same=$(cmp -s "$work/ours.pop" "$work/ref.pop" && echo identical || echo DIFFERENT)
  else
    ref_s=absent ref_rss=-; same=-
  fi
  printf '%-12s %7s %12s %12s %12s %12s %-28s %s\n' popularity "$n" "$ref_s" "$ours_s" \
    "$( [ "$ref_rss" = - ] && echo - || echo $((ref_rss / 1024)) )" "$( [ "$ours_rss" = - ] && echo - || echo $((ours_rss / 1024)) )" \
    "$( [ "$ref_s" = absent ] && echo - || ratio "$ref_s" "$ours_s")" "$same"

  # auto-layer
  for limit in "${limits[@]}"; do
    read -r ours_s ours_rss < <(measure3 "$work/ours.auto" "$ours" auto-layer "$graph" /dev/null "$limit")
    if [ -f "$auto_layer" ]; then
      read -r ref_s ref_rss < <(measure "$work/ref.auto" env PYTHONHASHSEED=0 "$python" "$auto_layer" "$graph" /dev/null "$limit")
      same=$(cmp -s "$work/ours.auto" "$work/ref.auto" && echo identical || echo "DIFFERENT (ties?)")
    else
      ref_s=absent ref_rss=-; same=-
    fi
    printf '%-12s %7s %12s %12s %12s %12s %-28s %s\n' "auto-l. $limit" "$n" "$ref_s" "$ours_s" \
      "$( [ "$ref_rss" = - ] && echo - || echo $((ref_rss / 1024)) )" "$( [ "$ours_rss" = - ] && echo - || echo $((ours_rss / 1024)) )" \
      "$( [ "$ref_s" = absent ] && echo - || ratio "$ref_s" "$ours_s")" "$same"
  done
done
