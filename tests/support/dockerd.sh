#!/usr/bin/env bash
# Start or stop a private Docker engine on a unix socket (no network, no
# iptables), as ../shared/notes/test-environment.md describes.
#   tests/support/dockerd.sh start DIR   -> prints DOCKER_HOST=unix://DIR/docker.sock
#   tests/support/dockerd.sh stop DIR
set -euo pipefail
cmd=${1:?start|stop}; dir=${2:?state directory}
case "$cmd" in
start)
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [ -S "$dir/docker.sock" ] && DOCKER_HOST="unix://$dir/docker.sock" docker info >/dev/null 2>&1; then
    echo "DOCKER_HOST=unix://$dir/docker.sock"; exit 0
  fi
  command -v dockerd >/dev/null || { echo "dockerd.sh: dockerd not installed (tests/install-deps.sh)" >&2; exit 1; }
  setsid sh -c "exec dockerd --bridge=none --iptables=false --ip6tables=false --ip-masq=false \
    -H unix://$dir/docker.sock --data-root $dir/data --exec-root $dir/exec --pidfile $dir/dockerd.pid" \
    >"$dir/log" 2>&1 </dev/null &
  for _ in $(seq 1 120); do
    if DOCKER_HOST="unix://$dir/docker.sock" docker info >/dev/null 2>&1; then
      echo "DOCKER_HOST=unix://$dir/docker.sock"; exit 0
    fi
    sleep 0.5
  done
  echo "dockerd.sh: dockerd did not come up; log:" >&2; tail -20 "$dir/log" >&2; exit 1 ;;
stop)
  if [ -f "$dir/dockerd.pid" ]; then kill -TERM "$(cat "$dir/dockerd.pid")" 2>/dev/null || true; fi ;;
*) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
