#!/usr/bin/env bash
# README command (2): install what is missing, build, run the whole test suite.
# Integration tests need root; each one builds its own network namespaces and
# never touches the namespace it was started in.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
ctest --test-dir build --output-on-failure -j"$(nproc)" "$@"
