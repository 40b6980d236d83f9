#!/usr/bin/env bash
# Benchmark: portpub up/down for 1 ... 65,535 ports against CNI bridge+portmap
# up to 1,000 ports, in a private namespace. Bounded: a few minutes by default
# (CNI portmap at 1,000 ports takes tens of seconds a run).
#   scripts/bench.sh [--runs R] [--cni-runs R] [--max-cni-ports N] [--no-cni]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --bench
scripts/build.sh
exec build/tests/portpub-bench "$@"
