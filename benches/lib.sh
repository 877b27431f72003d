# Shared by the benchmarks: options, the bulk fixture and a timer.
# Source it with the script's arguments after setting $here, $shared and
# the defaults $bulk, $runs and $fixture.

while [ $# -gt 0 ]; do
  case "$1" in
    --bulk-mib) bulk=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --fixture) fixture=$2; shift 2 ;;
    *) echo "usage: $0 [--bulk-mib N] [--runs N] [--fixture DIR]" >&2; exit 2 ;;
  esac
done

[ -x /usr/bin/time ] || { echo "benches: GNU time is required (apt-get install time)" >&2; exit 1; }
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

# measure NAME COMMAND [PREPARE]: median wall time of $runs runs (PREPARE
# runs untimed before each), printed on stdout; a line with the median and
# the peak RSS on stderr.
measure() {
  local times="" rss=0 t m median
  for _ in $(seq "$runs"); do
    [ -z "${3:-}" ] || sh -c "$3"
    /usr/bin/time -o /tmp/li-bench-time -f "%e %M" sh -c "$2" 2>/dev/null || { echo "benches: '$1' failed" >&2; exit 1; }
    read -r t m < /tmp/li-bench-time
    times="$times $t"
    [ "$m" -le "$rss" ] || rss=$m
  done
  median=$(echo $times | tr ' ' '\n' | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}')
  printf '%-36s %8.2f s   peak RSS %6d KiB\n' "$1" "$median" "$rss" >&2
  echo "$median"
}

# split_layers CONF N OUT: CONF's store paths, in order, in N layers.
split_layers() {
  python3 - "$1" "$2" "$3" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
paths = [p for l in c["store_layers"] for p in l]
n = int(sys.argv[2])
c["store_layers"] = [paths[i * len(paths) // n:(i + 1) * len(paths) // n] for i in range(n)]
json.dump(c, open(sys.argv[3], "w"))
PY
}
