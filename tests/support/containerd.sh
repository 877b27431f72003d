#!/usr/bin/env bash
# Start or stop a private containerd (its own root, state and sockets; the
# CRI plugin off), as ../shared/notes/test-environment.md describes.
#   tests/support/containerd.sh start DIR   -> prints CONTAINERD_ADDRESS=DIR/containerd.sock
#   tests/support/containerd.sh stop DIR
set -euo pipefail
cmd=${1:?start|stop}; dir=${2:?state directory}
case "$cmd" in
start)
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  sock=$dir/containerd.sock
  if [ -S "$sock" ] && ctr -a "$sock" version >/dev/null 2>&1; then
    echo "CONTAINERD_ADDRESS=$sock"; exit 0
  fi
  command -v containerd >/dev/null || { echo "containerd.sh: containerd not installed (tests/install-deps.sh)" >&2; exit 1; }
  cat >"$dir/config.toml" <<CONF
version = 2
root = "$dir/root"
state = "$dir/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$sock"
[ttrpc]
  address = "$dir/containerd-ttrpc.sock"
[debug]
  address = "$dir/containerd-debug.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/opt"
CONF
  setsid sh -c "echo \$\$ > $dir/containerd.pid; exec containerd --config $dir/config.toml" >"$dir/log" 2>&1 </dev/null &
  for _ in $(seq 1 120); do
    if [ -S "$sock" ] && ctr -a "$sock" version >/dev/null 2>&1; then
      echo "CONTAINERD_ADDRESS=$sock"; exit 0
    fi
    sleep 0.5
  done
  echo "containerd.sh: containerd did not come up; log:" >&2; tail -20 "$dir/log" >&2; exit 1 ;;
stop)
  if [ -f "$dir/containerd.pid" ]; then kill -TERM "$(cat "$dir/containerd.pid")" 2>/dev/null || true; fi ;;
*) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
