#!/usr/bin/env bash
# Runs every fuzz target for a bounded time: fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
# The committed seeds in fuzz/corpus/<target>/ are read, never written; what
# the fuzzer finds goes to fuzz/.work/<target>/ (kept between runs, ignored
# by git). A crash lands in fuzz/artifacts/<target>/ and fails the script:
# turn it into a regression test (tests/hostile_fuzz_regressions.rs).
set -euo pipefail
secs=${1:-60}
shift || true
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(conf graph pipeline base_image verify)
# cargo-fuzz passes nightly-only flags; only stable exists here.
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
# No sanitizer: the crate's own code is safe Rust, and ASan would not
# instrument the C decompressors (built by the cc crate) anyway; debug
# assertions (overflow checks included) stay on.
cargo fuzz build -s none
# The base-image target writes each input (and each decompressed spool) to
# a temporary file: keep them in memory when possible.
[ -d /dev/shm ] && export TMPDIR=/dev/shm
status=0
for t in "${targets[@]}"; do
  mkdir -p ".work/$t" "artifacts/$t"
  max_len=16384
  dict=dict/json.dict
  if [ "$t" = base_image ] || [ "$t" = verify ]; then max_len=262144; dict=dict/tar.dict; fi
  echo "fuzz/run.sh: $t for ${secs}s" >&2
  if ! cargo fuzz run -s none "$t" ".work/$t" "corpus/$t" -- \
      -max_total_time="$secs" -timeout=20 -rss_limit_mb=1024 -max_len="$max_len" -dict="$dict" \
      -print_final_stats=1 2>"artifacts/$t.log"; then
    echo "fuzz/run.sh: $t FAILED; see fuzz/artifacts/$t.log and fuzz/artifacts/$t/" >&2
    tail -40 "artifacts/$t.log" >&2
    status=1
  fi
  grep -E '^stat::(number_of_executed_units|peak_rss_mb)|^Done' "artifacts/$t.log" >&2 || true
done
exit $status
