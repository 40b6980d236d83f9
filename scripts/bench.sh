#!/usr/bin/env bash
# Benchmarks, in private namespaces (a few minutes in all):
#   1. portpub up/down for 1 ... 65,535 ports against CNI bridge+portmap up to
#      1,000 ports (most of the time is CNI portmap's);
#   2. the loopback proxy against docker-proxy and direct: throughput,
#      connection rate, memory for 1,000 ports;
#   3. container start-to-served latency with Podman: netavark, the portpub
#      hook, CNI bridge+portmap, CNI portpub; 1 port and 1,000.
#   scripts/bench.sh [publish|proxy|runtimes] [options of that benchmark]
# docker-proxy comes from Debian's docker.io package, unpacked into
# build/bench-tools (no Docker engine is installed or run).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --bench
scripts/build.sh >/dev/null

which="${1:-all}"
[[ $# -gt 0 ]] && shift
case $which in
  all) [[ $# -eq 0 ]] || { echo "bench: options go with 'publish', 'proxy' or 'runtimes'" >&2; exit 2; } ;;
  publish | proxy | runtimes) ;;
  *) echo "usage: scripts/bench.sh [publish|proxy|runtimes] [options of that benchmark]" >&2; exit 2 ;;
esac

docker_proxy() {
  local dir=build/bench-tools
  if [[ ! -x $dir/usr/sbin/docker-proxy ]]; then
    mkdir -p "$dir"
    (cd "$dir" && apt-get download docker.io >/dev/null && dpkg-deb -x docker.io_*.deb .)
  fi
  echo "$dir/usr/sbin/docker-proxy"
}

if [[ $which == all || $which == publish ]]; then
  echo "## Publishing ports"
  build/tests/portpub-bench "$@"
fi
if [[ $which == all || $which == proxy ]]; then
  echo "## The loopback proxy"
  build/tests/portpub-proxy-bench --docker-proxy "$(docker_proxy)" "$@"
fi
if [[ $which == all || $which == runtimes ]]; then
  echo "## Container start to served, with Podman"
  build/tests/portpub-runtime-bench "$@"
fi
