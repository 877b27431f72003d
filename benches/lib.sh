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

# measure NAME COMMAND [PREPARE]: best wall time of $runs runs (PREPARE runs
# untimed before each), printed on stdout; a line with peak RSS on stderr.
measure() {
  local best="" rss=""
  for _ in $(seq "$runs"); do
    [ -z "${3:-}" ] || sh -c "$3"
    /usr/bin/time -o /tmp/li-bench-time -f "%e %M" sh -c "$2" 2>/dev/null || { echo "benches: '$1' failed" >&2; exit 1; }
    read -r t m < /tmp/li-bench-time
    if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then best=$t; fi
    if [ -z "$rss" ] || [ "$m" -gt "$rss" ]; then rss=$m; fi
  done
  printf '%-34s %8.2f s   peak RSS %6d KiB\n' "$1" "$best" "$rss" >&2
  echo "$best"
}
