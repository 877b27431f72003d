# Shared by the benchmarks: the bulk fixture and a best-of-N timer.
# Source it after setting $here, $shared, $bulk, $runs and $fixture.

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
